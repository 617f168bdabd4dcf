"""Boot: install the device crypto, pick the board, run the request loop.

The board module is whichever `board` is on the import path: boards/unix in
the emulator, boards/esp32 frozen into the ESP32 image.
"""

import sys

# On the board, the frozen (flashed with the firmware image) modules come
# first: a file written to the filesystem must never replace signer code.
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")


def main():
    from signer import crypto

    crypto.install()  # before embit is first imported
    import board
    from signer.app import App

    App(board.Board()).run()


try:
    main()
except BaseException as e:
    # A failure before the board's own log exists: leave it where the
    # emulator's launcher looks (the board logs everything after boot).
    import os

    if hasattr(os, "getenv") and os.getenv("AMANAT_STATE"):
        with open(os.getenv("AMANAT_STATE") + "/device.log", "a") as f:
            sys.print_exception(e, f)
    raise

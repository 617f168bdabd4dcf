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

from signer import crypto  # noqa: E402

crypto.install()

import board  # noqa: E402

from signer.app import App  # noqa: E402


def main():
    App(board.Board()).run()


main()

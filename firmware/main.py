"""Boot: install the device crypto, pick the board, run the request loop.

The board module is whichever `board` is on the import path: boards/unix in
the emulator, boards/esp32 frozen into the ESP32 image.
"""

from signer import crypto

crypto.install()

import board  # noqa: E402

from signer.app import App  # noqa: E402


def main():
    App(board.Board()).run()


main()

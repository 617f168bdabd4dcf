# Freeze manifest for an ESP32 build (LILYGO T-Display class, no PSRAM):
#   EMBIT_ROOT=<folder holding embit 0.8.0> \
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=<this file>
# Frozen modules run from flash, so the precomputed secp256k1 table and the
# bytecode cost no RAM. Relative paths are taken from this file's folder.
#
# UART0 is the host's line. Stock ESP32_GENERIC keeps it for the REPL; build
# with MICROPY_HW_ENABLE_UART_REPL=0 and ESP-IDF logging off
# (CONFIG_LOG_DEFAULT_LEVEL_NONE, CONFIG_BOOTLOADER_LOG_LEVEL_NONE) so that the
# board gets the UART with a 4 KiB receive buffer, nothing else writes to the
# line, and no REPL ever answers on it (see board.py).
import os

include("$(PORT_DIR)/boards/manifest.py")
# A frozen main.py runs at boot in place of one on the filesystem.
module("main.py", base_path="../../firmware")
package("signer", base_path="../../firmware")
package("embit", base_path=os.environ["EMBIT_ROOT"])
# The board layer, imported by main.py as `board`, and the interface it implements.
module("board_base.py", base_path="..")
module("board.py")
module("st7789.py")

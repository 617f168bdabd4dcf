# Freeze manifest for an ESP32 build (LILYGO T-Display class, no PSRAM):
#   EMBIT_ROOT=<folder holding embit 0.8.0> \
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=<this file>
# Frozen modules run from flash, so the precomputed secp256k1 table and the
# bytecode cost no RAM. The board layer (UART, display, buttons) will live here.
import os

include("$(PORT_DIR)/boards/manifest.py")
package("signer", base_path="$(MPY_DIR)/../firmware")
package("embit", base_path=os.environ["EMBIT_ROOT"])

# Freeze manifest of the QEMU image (tools/build_qemu.py passes it with
# EMBIT_ROOT set, as for boards/esp32/manifest.py). Frozen modules run from
# the image, not the heap. Relative paths are taken from this file's folder.
import os

module("main.py", base_path="../../firmware")
package("signer", base_path="../../firmware")
package("embit", base_path=os.environ["EMBIT_ROOT"])
module("board_base.py", base_path="..")
module("board.py")

"""Where the firmware, the board code and the MicroPython tools live.

The firmware ships inside the package (see pyproject.toml), so these resolve the
same from a source checkout (editable install) and from a plain `pip install .`.
"""

import os
import shutil
import sys
from importlib import resources
from pathlib import Path


def firmware_dir() -> Path:
    return Path(str(resources.files("amanat.firmware")))


def boards_dir() -> Path:
    """The folder of the board layers and of board_base.py, their interface."""
    return Path(str(resources.files("amanat.boards")))


def board_dir(name: str) -> Path:
    return boards_dir() / name


def embit_root() -> Path:
    """The folder holding the embit package, for MicroPython's import path."""
    import embit

    return Path(embit.__file__).resolve().parent.parent


def _tool(name: str) -> str:
    # Prefer the tool installed beside this interpreter (the project's venv).
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(
            f"'{name}' not found: install the amanat package (it depends on it)"
        )
    return found


def qemu_image() -> Path:
    """The QEMU target's image: AMANAT_QEMU_IMAGE, else build/qemu/ of the
    source checkout this package runs from (made by `make qemu`)."""
    given = os.environ.get("AMANAT_QEMU_IMAGE")
    if given:
        if not Path(given).is_file():
            raise FileNotFoundError(f"AMANAT_QEMU_IMAGE={given}: no such file")
        return Path(given).resolve()
    root = Path(__file__).resolve().parents[2]
    image = root / "build" / "qemu" / "firmware.elf"
    if (root / "boards" / "qemu").is_dir() and image.is_file():
        return image
    where = f"run `make qemu` in {root}" if (root / "boards" / "qemu").is_dir() else \
        "run `make qemu` in a source checkout"
    raise FileNotFoundError(f"no QEMU image: {where}, or set AMANAT_QEMU_IMAGE to a firmware.elf")


def qemu_missing() -> str | None:
    """None if the QEMU target can run here (QEMU and the image), else why not."""
    try:
        qemu_bin()
        qemu_image()
    except FileNotFoundError as e:
        return str(e)
    return None


def qemu_bin() -> str:
    found = os.environ.get("AMANAT_QEMU") or shutil.which("qemu-system-arm")
    if not found:
        raise FileNotFoundError("qemu-system-arm not found: install it (Debian: apt install qemu-system-arm)")
    return found


def micropython_bin() -> str:
    return os.environ.get("AMANAT_MICROPYTHON") or _tool("micropython")


def mpy_cross_bin() -> str:
    return _tool("mpy-cross")

"""Build the QEMU image (`make qemu`): MicroPython v1.28.0's ports/qemu with
boards/qemu as its board folder, the firmware, embit and the board frozen in.

The source is MICROPY_SRC (a folder, or a .tar.gz whose SHA-256 must be
SOURCE_SHA256), else a clone of the v1.28.0 tag with the two submodules the
build needs. The source tree is only read: everything is built under
build/qemu/. The image, build/qemu/firmware.elf, is rebuilt only when its
inputs (source, board folder, firmware, embit, this script, the compiler)
changed; build/qemu/firmware.json records their hash, the build time and
the image's size.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "qemu"
IMAGE = OUT / "firmware.elf"
STAMP = OUT / "firmware.json"
LOG = OUT / "build.log"
TAG = "v1.28.0"
VERSION = (1, 28, 0)
REPO = "https://github.com/micropython/micropython"
SUBMODULES = ("lib/axtls", "lib/micropython-lib")
SOURCE_SHA256 = "11126cf67bdcbb68a78b2b2099882e3a2d156ae625263c36373705366af2d879"
CC = "arm-none-eabi-gcc"


def fail(msg):
    sys.exit(f"make qemu: {msg}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_hash(*roots, skip=(".git", "__pycache__", "build")):
    """One hash over the names and contents of every file under `roots`."""
    h = hashlib.sha256()
    for root in roots:
        root = Path(root)
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and not skip_path(p.relative_to(root), skip))
        for p in files:
            h.update(str(p.relative_to(root.parent)).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def skip_path(rel, skip):
    return any(part in skip or part.startswith("build-") for part in rel.parts) or rel.suffix in (".pyc", ".mpy")


def check_version(src):
    try:
        text = (src / "py" / "mpconfig.h").read_text()
        found = tuple(int(text.split(f"#define MICROPY_VERSION_{k} ")[1].split()[0])
                      for k in ("MAJOR", "MINOR", "MICRO"))
    except (OSError, IndexError, ValueError):
        fail(f"{src} is not a MicroPython source tree (no version in py/mpconfig.h)")
    if found != VERSION:
        fail(f"{src} is MicroPython {'.'.join(map(str, found))}, not {TAG}")


def source():
    """(the source folder, a hash identifying it)."""
    given = os.environ.get("MICROPY_SRC")
    if given:
        path = Path(given).resolve()
        if path.is_dir():
            check_version(path)
            return path, tree_hash(path)
        if not path.is_file():
            fail(f"MICROPY_SRC={given}: no such folder or archive")
        digest = sha256_file(path)
        if digest != SOURCE_SHA256:
            fail(f"{path}: SHA-256 {digest}, expected {SOURCE_SHA256} (MicroPython {TAG} with {', '.join(SUBMODULES)})")
        dest = OUT / f"micropython-{digest[:16]}"
        if not (dest / ".complete").exists():
            shutil.rmtree(dest, ignore_errors=True)
            tmp = OUT / "extract.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
            [top] = list(tmp.iterdir())
            top.rename(dest)
            tmp.rmdir()
            (dest / ".complete").touch()
        check_version(dest)
        return dest, digest
    dest = OUT / "micropython"
    if not (dest / ".complete").exists():
        shutil.rmtree(dest, ignore_errors=True)
        print(f"make qemu: no MICROPY_SRC: cloning MicroPython {TAG} from {REPO}", flush=True)
        try:
            subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", TAG, REPO, str(dest)], check=True)
            subprocess.run(["git", "-C", str(dest), "submodule", "update", "--init", "--depth", "1", *SUBMODULES],
                           check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            shutil.rmtree(dest, ignore_errors=True)
            fail(f"cannot clone {REPO} ({e}): set MICROPY_SRC to a MicroPython {TAG} folder or archive")
        (dest / ".complete").touch()
    check_version(dest)
    return dest, tree_hash(dest)


def inputs(src_hash):
    """(hash of what the C build depends on, hash of the frozen Python, embit's root)."""
    import embit

    embit_dir = Path(embit.__file__).resolve().parent
    cc = subprocess.run([CC, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    board = ROOT / "boards" / "qemu"
    config = tree_hash(board / "mpconfigboard.mk", board / "hal.c", board / "include", Path(__file__))
    frozen = tree_hash(board / "board.py", board / "manifest.py", ROOT / "boards" / "board_base.py",
                       ROOT / "firmware", embit_dir)
    return hashlib.sha256(f"{src_hash}\n{cc}\n{config}".encode()).hexdigest(), frozen, embit_dir.parent


def make(log, args, env=None):
    """Run make, its output to the build log; on failure show the log's end."""
    proc = subprocess.run(["make", "-j", str(os.cpu_count() or 1), *args], stdout=log, stderr=subprocess.STDOUT,
                          env=env)
    if proc.returncode:
        log.flush()
        sys.stderr.write("".join(LOG.read_text().splitlines(keepends=True)[-40:]))
        fail(f"the build failed (make {' '.join(args[:2])}); the whole log is {LOG}")


def main():
    if not shutil.which(CC) or not shutil.which("qemu-system-arm"):
        fail(f"{CC} or qemu-system-arm missing: install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm")
    OUT.mkdir(parents=True, exist_ok=True)
    src, src_hash = source()
    config, frozen, embit_root = inputs(src_hash)
    try:
        old = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        old = {}
    if old.get("config") == config and old.get("frozen") == frozen and IMAGE.exists():
        print(f"make qemu: {IMAGE.relative_to(ROOT)} is up to date")
        return
    port, mpy_cross = OUT / "port", OUT / "mpy-cross"
    # make sees neither a changed flag nor another source tree: start those clean.
    if old.get("source") != src_hash:
        shutil.rmtree(mpy_cross, ignore_errors=True)
    if old.get("config") != config:
        shutil.rmtree(port, ignore_errors=True)
    t0 = time.monotonic()
    print(f"make qemu: building {IMAGE.relative_to(ROOT)} from {src} (log: {LOG.relative_to(ROOT)})", flush=True)
    with open(LOG, "w") as log:
        make(log, ["-C", str(src / "mpy-cross"), f"BUILD={mpy_cross}"])
        # MICROPY_MPYCROSS: the port's build and its manifest tool use this mpy-cross.
        env = dict(os.environ, EMBIT_ROOT=str(embit_root), MICROPY_MPYCROSS=str(mpy_cross / "mpy-cross"),
                   MICROPY_GIT_TAG=TAG, MICROPY_GIT_HASH=src_hash[:10])  # the banner: the source, not this checkout
        make(log, ["-C", str(src / "ports" / "qemu"), "BOARD=AMANAT", f"BOARD_DIR={ROOT / 'boards' / 'qemu'}",
                   f"BUILD={port}", f"FROZEN_MANIFEST={ROOT / 'boards' / 'qemu' / 'manifest.py'}"], env)
    seconds = round(time.monotonic() - t0, 1)
    shutil.copyfile(port / "firmware.elf", IMAGE)
    size = subprocess.run(["arm-none-eabi-size", str(IMAGE)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(x) for x in size.splitlines()[1].split()[:3])
    STAMP.write_text(json.dumps({"source": src_hash, "config": config, "frozen": frozen, "build_seconds": seconds,
                                 "text": text, "data": data, "bss": bss}) + "\n")
    print(f"make qemu: built {IMAGE.relative_to(ROOT)} in {seconds} s: {text + data} bytes of code and data "
          f"(text {text}, data {data}), {bss} bytes of RAM (bss, the heap included)")


if __name__ == "__main__":
    main()

"""Emulator board: the firmware under the MicroPython unix port.

- Serial line: stdin/stdout are the master side of a pty (set non-blocking by
  the launcher, which also keeps a slave descriptor open so that hosts may
  come and go). Hosts open the slave, /dev/pts/N, exactly like a USB serial
  port.
- DebugLink: stderr is the master side of a second pty carrying the same
  frames (emulator only: press buttons, type text, read the screen).
- Flash: a littlefs2 image file in the state folder, mounted at /flash,
  the filesystem the ESP32 build uses.
- Screens: every screen with its answer is appended to STATE/screens.jsonl.
- Device key: STATE/device.key (32 random bytes, made at the first boot),
  standing for the ESP32's eFuse key: not in flash.img, so a copy of the
  flash image alone cannot unseal the seed or test a PIN.

Settings come from the environment the launcher sets: AMANAT_STATE,
AMANAT_NETWORK (used at setup only), AMANAT_AUTO_CONFIRM, AMANAT_MEASURE_HEAP,
AMANAT_BAUD (the serial line paced like a UART at that rate), AMANAT_FAST_CLOCK
(PIN delays 100 times shorter, for tests).
"""

import os
import select
import sys
import time
import vfs

from board_base import BoardBase, Pacer

FLASH_BLOCK = 4096
FLASH_BLOCKS = 1024  # 4 MiB, like the ESP32's data partition


class FileBlockDevice:
    """littlefs block device over an image file (extended interface)."""

    def __init__(self, path, blocks=FLASH_BLOCKS, block_size=FLASH_BLOCK):
        self.block_size = block_size
        self.blocks = blocks
        try:
            self.f = open(path, "r+b")
            self.fresh = False
        except OSError:
            self.f = open(path, "w+b")
            self.f.seek(blocks * block_size - 1)
            self.f.write(b"\xff")
            self.f.flush()
            self.fresh = True

    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * self.block_size + offset)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, offset=0):
        self.f.seek(block * self.block_size + offset)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 3:  # sync
            self.f.flush()
        elif op == 4:
            return self.blocks
        elif op == 5:
            return self.block_size
        return 0


class Channel:
    """One side of a framed byte line over a non-blocking file descriptor."""

    def __init__(self, stream, baud=0):
        self.stream = stream
        self._out = select.poll()
        self._out.register(stream, select.POLLOUT)
        self._buf = bytearray(512)
        self.pacer = Pacer(baud) if baud else None

    def read_available(self):
        n = self.pacer.incoming(len(self._buf)) if self.pacer else len(self._buf)
        if not n:
            return b""
        try:
            got = self.stream.readinto(memoryview(self._buf)[:n]) or 0
        except OSError:
            got = 0
        if self.pacer:
            self.pacer.received(got)
        return bytes(self._buf[:got])

    def write(self, data):
        mv = memoryview(data)
        while len(mv):
            if self.pacer:
                self.pacer.send(min(len(mv), 64))
            try:
                n = self.stream.write(mv[:64] if self.pacer else mv)
            except OSError:
                n = 0
            if n:
                mv = mv[n:]
            else:
                # The pty buffer is full: wait for the host to read, but not
                # forever (a host that stopped reading must not hang us).
                if not self._out.poll(500):
                    return False
        return True


class Board(BoardBase):
    name = "unix"
    model = "amanat-emulator"
    flash_root = "/flash"

    def __init__(self):
        self.state = os.getenv("AMANAT_STATE") or "."
        self.default_network = os.getenv("AMANAT_NETWORK") or "regtest"
        self.auto_confirm = os.getenv("AMANAT_AUTO_CONFIRM") == "1"
        self.measure_heap = os.getenv("AMANAT_MEASURE_HEAP") == "1"
        self.clock_speed = 100 if os.getenv("AMANAT_FAST_CLOCK") == "1" else 1
        if os.getenv("AMANAT_TRAIL_KIB"):
            self.audit_capacity = int(os.getenv("AMANAT_TRAIL_KIB")) * 1024
        self.serial = Channel(sys.stdin.buffer, int(os.getenv("AMANAT_BAUD") or 0))
        self.debug = Channel(sys.stderr.buffer)
        self._poll = select.poll()
        self._poll.register(sys.stdin.buffer, select.POLLIN)
        self._poll.register(sys.stderr.buffer, select.POLLIN)
        self._log_path = self.state + "/device.log"

    def mount_flash(self):
        dev = FileBlockDevice(self.state + "/flash.img")
        if dev.fresh:
            vfs.VfsLfs2.mkfs(dev)
        try:
            fs = vfs.VfsLfs2(dev)
        except OSError:
            # An unreadable image: keep it for inspection, start empty.
            self.log("flash image unreadable; formatting a new one")
            vfs.VfsLfs2.mkfs(dev)
            fs = vfs.VfsLfs2(dev)
        vfs.mount(fs, self.flash_root)

    def device_key(self):
        path = self.state + "/device.key"
        key = bytearray(32)
        try:
            with open(path, "rb") as f:
                n = f.readinto(key)
        except OSError:
            n = 0
        if n != 32:
            key[:] = os.urandom(32)
            with open(path + ".tmp", "wb") as f:
                f.write(key)
            os.rename(path + ".tmp", path)
        return key

    def wait(self, timeout_ms):
        """Block until a channel has input or timeout_ms passes."""
        ready = self._poll.poll(timeout_ms)
        if self.serial.pacer and any(obj is sys.stdin.buffer for obj, _ in ready):
            self.serial.pacer.arrived()

    def ticks_ms(self):
        return time.ticks_ms()

    def show(self, screen):
        # No display: the screen is kept for DebugLink and logged when answered.
        pass

    def record_screen(self, record, write):
        with open(self.state + "/screens.jsonl", "a") as f:
            write(f)  # streamed: a long review needs no big string
            f.write("\n")

    def audit_files(self):
        return [self.state + "/screens.1.jsonl", self.state + "/screens.jsonl"]

    def log(self, text):
        with open(self._log_path, "a") as f:
            f.write(text)
            f.write("\n")

    def log_exception(self, e):
        with open(self._log_path, "a") as f:
            sys.print_exception(e, f)

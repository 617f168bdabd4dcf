"""QEMU board: the firmware frozen into a Cortex-M3 image for QEMU's
mps2-an385 with a 128 KiB heap, a stand-in for an ESP32 without PSRAM.

The launcher (host/amanat/emulator.py) starts it through the raw REPL with
board.boot(...), which takes the settings the unix board reads from its
environment. The CMSDK UARTs are driven from here through their registers
(only UART0 has a C driver, and that one belongs to the REPL):
- UART0: the protocol line, a pty on the host;
- UART1: DebugLink, a second pty;
- UART2: the audit trail's mirror, appended to STATE/screens.jsonl;
- UART3: the error log, appended to STATE/device.log.
QEMU reads a pty only as fast as the UART takes bytes, so nothing is lost
while the device is busy: the bytes wait on the host.

Flash: littlefs2 over 4 MiB of RAM at 0x21000000, the geometry of the unix
board's flash.img. The launcher loads STATE/flash.img there at start and
saves the region back at `amanat emulator stop`; a QEMU killed any other
way loses what changed since it started. The audit trail lives in flash
(/flash/audit.jsonl, what audit_read serves); each record is copied to
UART2 once written, and the whole trail at boot, so that screens.jsonl is
always the device's trail byte for byte.
"""

import gc
import io
import os
import sys
import time
import uctypes
import vfs

import machine
import micropython
from micropython import const
from board_base import BoardBase, Pacer

UART0, UART1, UART2, UART3 = 0x40004000, 0x40005000, 0x40006000, 0x40007000
STATE, CTRL, BAUDDIV = 4, 8, 16
TX_FULL = 1
TX_EN, RX_EN = 1, 2
RX_GAP = const(1000)  # polls, about 200 us
STALL_MS = 500  # a line that takes no byte for this long is given up (as the unix board)

FLASH_ADDR = 0x21000000
FLASH_BLOCK = 4096
FLASH_BLOCKS = 1024  # 4 MiB, as the unix board and the ESP32's data partition
HEAP_SIZE = 131072  # the image's heap (boards/qemu/mpconfigboard.mk)
DEVICE_KEY_ADDR = 0x21400020  # STATE/device.key, loaded there by the launcher (after hal.c's random seed)

# Set by boot() from the launcher's options.
SETTINGS = {"network": "regtest", "auto_confirm": False, "measure_heap": False, "baud": 0, "fast_clock": False,
            "trail_kib": 0}
_ballast = None


@micropython.viper
def _rx(base: uint, buf, n: int) -> int:
    # Take up to n bytes until none has come for RX_GAP polls: the bytes
    # read. QEMU hands the UART the next byte some 30 us after the last was
    # read, so stopping at the first empty look would take one at a time.
    reg = ptr32(base)
    out = ptr8(buf)
    i = 0
    idle = 0
    while i < n and idle < RX_GAP:
        if reg[1] & 2:
            out[i] = reg[0]
            i += 1
            idle = 0
        else:
            idle += 1
    return i


@micropython.viper
def _tx(base: uint, buf, start: int, n: int) -> int:
    # Send buf[start:n] until the UART is full: the bytes sent.
    reg = ptr32(base)
    src = ptr8(buf)
    i = start
    while i < n and not (reg[1] & 1):
        reg[0] = src[i]
        i += 1
    return i - start


@micropython.asm_thumb
def _wfi():
    wfi()  # sleep until the next interrupt (SysTick: 1 ms), not spin


class Uart:
    """A board channel over one CMSDK UART."""

    def __init__(self, base, baud=0):
        self.base = base
        machine.mem32[base + BAUDDIV] = 16
        machine.mem32[base + CTRL] = TX_EN | RX_EN
        self._buf = bytearray(1024)
        self.pacer = Pacer(baud) if baud else None

    def pending(self):
        return machine.mem32[self.base + STATE] & 2

    def read_available(self):
        """Everything that has arrived, up to 1 KiB a call (at the line's
        pace when one is set)."""
        n = self.pacer.incoming(len(self._buf)) if self.pacer else len(self._buf)
        if not n:
            return b""
        got = _rx(self.base, self._buf, n)
        if self.pacer:
            self.pacer.received(got)
        return bytes(self._buf[:got])

    def write(self, data):
        """Send all of data; False once the UART took nothing for STALL_MS."""
        n = len(data)
        i = 0
        since = time.ticks_ms()
        while i < n:
            step = n
            if self.pacer:
                step = min(n, i + 64)
                self.pacer.send(step - i)
            sent = _tx(self.base, data, i, step)
            if sent:
                i += sent
                since = time.ticks_ms()
            elif time.ticks_diff(time.ticks_ms(), since) > STALL_MS:
                return False
            else:
                _wfi()  # the host is not reading: wait a tick, do not spin
        return True


class _UartText(io.IOBase):
    """A stream onto a UART, for sys.print_exception."""

    def __init__(self, uart):
        self.uart = uart

    def write(self, s):
        self.uart.write(s.encode() if isinstance(s, str) else s)
        return len(s)


class RamBlockDevice:
    """littlefs block device over RAM outside the heap (extended interface)."""

    def __init__(self, addr, blocks, block_size):
        self.mem = memoryview(uctypes.bytearray_at(addr, blocks * block_size))
        self.blocks = blocks
        self.block_size = block_size

    def readblocks(self, block, buf, offset=0):
        start = block * self.block_size + offset
        buf[:] = self.mem[start:start + len(buf)]

    def writeblocks(self, block, buf, offset=0):
        start = block * self.block_size + offset
        self.mem[start:start + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        return 0  # init, sync, erase: nothing to do for RAM


class Board(BoardBase):
    name = "qemu"
    model = "amanat-qemu"
    flash_root = "/flash"

    def __init__(self):
        self.default_network = SETTINGS["network"]
        self.auto_confirm = SETTINGS["auto_confirm"]
        self.measure_heap = SETTINGS["measure_heap"]
        self.clock_speed = 100 if SETTINGS["fast_clock"] else 1
        self.serial = Uart(UART0, SETTINGS["baud"])
        self.debug = Uart(UART1)
        self._audit = Uart(UART2)
        self._log = _UartText(Uart(UART3))
        self._trail = self.flash_root + "/audit.jsonl"
        if SETTINGS["trail_kib"]:
            self.audit_capacity = SETTINGS["trail_kib"] * 1024

    def device_key(self):
        return bytearray(uctypes.bytes_at(DEVICE_KEY_ADDR, 32))

    def mount_flash(self):
        dev = RamBlockDevice(FLASH_ADDR, FLASH_BLOCKS, FLASH_BLOCK)
        try:
            fs = vfs.VfsLfs2(dev)
        except OSError:
            self.log("flash: no filesystem loaded; formatting a new one")
            vfs.VfsLfs2.mkfs(dev)
            fs = vfs.VfsLfs2(dev)
        vfs.mount(fs, self.flash_root)
        for path in self.audit_files():  # STATE/screens.jsonl starts empty at every boot
            self._mirror(path, 0)

    def _mirror(self, path, start):
        """Copy the trail file at `path` from byte `start` on to UART2."""
        try:
            f = open(path, "rb")
        except OSError:
            return
        with f:
            f.seek(start)
            buf = bytearray(256)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                self._audit.write(memoryview(buf)[:n])

    def record_screen(self, record, write):
        """Append one record in flash; then mirror exactly those bytes."""
        try:
            start = os.stat(self._trail)[6]
        except OSError:
            start = 0
        with open(self._trail, "a") as f:
            write(f)  # streamed: a long review needs no big string
            f.write("\n")
        self._mirror(self._trail, start)

    def audit_files(self):
        return [self.flash_root + "/audit.1.jsonl", self._trail]

    def log(self, text):
        try:
            self._log.write(text)
            self._log.write("\n")
        except Exception:
            pass  # logging must never take the device down

    def log_exception(self, e):
        try:
            sys.print_exception(e, self._log)
        except Exception:
            pass

    def ticks_ms(self):
        return time.ticks_ms()

    def wait(self, timeout_ms):
        """Sleep until a channel has input or timeout_ms passes."""
        start = time.ticks_ms()
        while not (self.serial.pending() or self.debug.pending()):
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                return
            _wfi()
        if self.serial.pacer:
            self.serial.pacer.arrived()

    def show(self, screen):
        pass  # no display: the screen is kept for DebugLink and recorded when answered


def boot(heap=0, **settings):
    """Start the firmware (called by the launcher through the raw REPL).
    `heap` below HEAP_SIZE leaves only that much to the firmware: the rest
    is taken by a ballast allocated first, never freed."""
    global _ballast
    micropython.kbd_intr(-1)  # 0x03 is data on this line, never Ctrl-C
    SETTINGS.update(settings)
    try:
        if heap and heap < HEAP_SIZE:
            gc.collect()
            _ballast = bytearray(HEAP_SIZE - heap)
        import main  # noqa: F401  (runs the firmware; returns only on a fatal error)
    except BaseException as e:
        log = _UartText(Uart(UART3))
        log.write("boot failed:\n")
        sys.print_exception(e, log)
    machine.reset()  # QEMU exits (semihosting): the launcher reports device.log

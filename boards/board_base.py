"""The board interface: everything the firmware asks of the hardware.

firmware/main.py imports the module `board` found on the import path and runs
`signer.app.App(board.Board())`; every board's `Board` derives from
`BoardBase` and implements what is marked below. The firmware never imports
`machine` or any other hardware module, and reaches the board only through
these names, so that the same firmware runs on the ESP32, in the emulator
and under a test's own board.

A channel (`serial`, `debug`) is a byte line with two methods:
- `read_available()`: the bytes that have arrived, b"" if none (never blocks);
- `write(data)`: send all of `data`; False if the line would not take it in
  a bounded time (a host that stopped reading must not hang the device).
"""

import time


class BoardBase:
    name = "base"  # "unix", "esp32", ...
    model = "amanat"  # `info`'s model
    flash_root = "/flash"  # where the firmware keeps its files
    default_network = "main"  # the network chosen at setup
    auto_confirm = False  # approve every yes/no prompt (emulator option only)
    measure_heap = False  # sample the heap in use at every progress point (emulators, for benchmarks)
    clock_speed = 1  # PIN delays pass this many times faster (emulators' --fast-clock, for tests)
    serial = None  # the protocol line: a channel
    debug = None  # DebugLink: a channel in emulators, None on a device

    # ---- storage
    def mount_flash(self):
        """Make `flash_root` a writable filesystem (called once, first)."""
        raise NotImplementedError

    # The audit trail's bound (firmware/signer/audit.py): requests that sign
    # or change the device are refused once its files hold this many bytes.
    # The flash beyond it stays free for the records of the device's own
    # life until the trail is exported.
    audit_capacity = 1024 * 1024

    def record_screen(self, record, write):
        """Append one record (a dict) to the audit trail's current file as
        one line: `write(f)` writes it (the firmware's canonical form, hashed
        as it is written), then the board ends the line. A failure raises:
        an answer that was not recorded must not be acted on."""
        raise NotImplementedError

    def audit_files(self):
        """The audit trail's two files, [archive, current]: the firmware
        renames the current one to the archive (audit.Trail)."""
        raise NotImplementedError

    def log(self, text):
        """Append a line to the device's error log; never raises."""
        raise NotImplementedError

    def log_exception(self, e):
        """Append an exception with its traceback to the error log; never raises."""
        raise NotImplementedError

    # ---- the device-unique secret
    def device_hmac(self, data):
        """HMAC-SHA256 of `data` under the board's device-unique key, which
        is not in the filesystem: a copy of the flash alone cannot unseal
        the seed, nor test a PIN offline (signer/storage.py)."""
        import hashlib  # the port's own sha256 (boards load before the firmware's crypto)

        key = self.device_key()  # 32 bytes: HMAC pads it to the 64-byte block
        pad = bytearray(64)
        try:
            for i in range(32):
                pad[i] = key[i] ^ 0x36
            for i in range(32, 64):
                pad[i] = 0x36
            inner = hashlib.sha256(pad)
            inner.update(data)
            for i in range(64):
                pad[i] ^= 0x36 ^ 0x5C
            outer = hashlib.sha256(pad)
            outer.update(inner.digest())
            return outer.digest()
        finally:
            for b in (key, pad):
                for i in range(len(b)):
                    b[i] = 0

    def device_key(self):
        """The device-unique key as a new bytearray (the caller wipes it):
        an eFuse key on the production ESP32 (docs/threat-model.md), NVS on
        the development board, a file beside the flash image in emulators."""
        raise NotImplementedError

    # ---- time and input
    def ticks_ms(self):
        """A millisecond clock (wraps as time.ticks_ms does)."""
        raise NotImplementedError

    def wait(self, timeout_ms):
        """Sleep until a channel or a button has input, or timeout_ms passes."""
        raise NotImplementedError

    def buttons(self):
        """"approve" or "reject" once the officer answered the yes/no screen
        shown, else None. Boards without buttons (the emulator) answer over
        DebugLink instead."""
        return None

    def key(self):
        """One key of a text prompt ("next", "prev", "select", "delete"), or
        None. Boards without buttons take the text over DebugLink instead."""
        return None

    # ---- display
    def show(self, screen):
        """Draw a screen (signer/screens.py): its "title" and "lines"; its
        "kind" is "confirm" (yes/no) or "text" (a text prompt)."""

    def show_input(self, lines):
        """Redraw the text prompt's typed-text rows: [text so far, the choice
        under the cursor] (masked for PINs and passphrases)."""


class Pacer:
    """A UART's pace on a faster line (the emulators' ptys): at `baud`, 8N1,
    a byte takes 10 bits. A channel takes input no faster than the line
    would have carried it since it began to arrive, and sends no faster."""

    def __init__(self, baud):
        self.baud = baud
        self._in = time.ticks_us()  # input: carried at the line's pace from here
        self._out = self._in  # output: the line is busy until then
        self._idle = True  # no input under way: the next to arrive starts the clock

    def _us(self, n):
        return n * 10_000_000 // self.baud

    def arrived(self):
        """Input has just begun to arrive (counted only on an idle line: bytes
        still waiting keep the pace they had)."""
        if self._idle:
            self._in = time.ticks_us()
            self._idle = False

    def incoming(self, n):
        """How many of up to n waiting bytes the line has carried by now."""
        elapsed = time.ticks_diff(time.ticks_us(), self._in)
        if elapsed < 0:  # not looked at for half the clock's period
            self._idle = True
            self.arrived()
            return 0
        return min(n, elapsed * self.baud // 10_000_000)

    def received(self, k):
        """k bytes were taken in; 0: none were waiting (the line is idle)."""
        if k:
            self._in = time.ticks_add(self._in, self._us(k))
        else:
            self._idle = True

    def send(self, n):
        """Wait until the line is free, then count it busy for n bytes."""
        now = time.ticks_us()
        ahead = time.ticks_diff(self._out, now)
        if ahead > 0:
            time.sleep_us(ahead)
        else:
            self._out = now
        self._out = time.ticks_add(self._out, self._us(n))

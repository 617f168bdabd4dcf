"""LILYGO T-Display board (ESP32 without PSRAM): serial line, display, buttons.

Serial line: UART0 (the CP2104 USB bridge) at 115200 8N1, binary. Ctrl-C is
turned off (0x03 is data here) and nothing is ever printed. Builds that free
UART0 from the REPL (MICROPY_HW_ENABLE_UART_REPL=0) get machine.UART with a
4 KiB receive buffer. Stock builds keep UART0 for the REPL and refuse that;
the line then runs over the REPL's stdin/stdout, whose receive ring holds
only ~260 bytes (logged at start: such a build is for bring-up only).

Display: ST7789 240x135. A screen is its title, its lines word-wrapped (long
words such as addresses start on a line of their own and are cut at the
width), in pages, and a footer saying what the buttons do.

Buttons: right (GPIO35) and left (GPIO0), active low, debounced.
- right, short press: next page
- left, short press: previous page
- right, held 1 s on the LAST page: approve (never before the last page was
  shown; a hold on an earlier page only turns the page)
- left, held 1 s on any page: reject
A press that began before the screen appeared counts only after release, so
a button held from one prompt never answers the next, and holding both
buttons never approves. GPIO0 is also a boot strap: held through a reset, it
starts the ROM loader instead of the firmware.

Text prompts (recovery words, PIN, passphrase) are typed on a wheel of
choices (signer/text_entry.py): key() gives right short = next, left short =
prev, right held = select, left held = delete, a hold being 0.6 s here (a
choice is easily taken back). The top two rows show what the entry gives to
show_input(): the text so far (PIN and passphrase as '*') and the wheel;
the prompt and its error follow, on one page. Typed text is never logged.

Flash: MicroPython mounts littlefs at "/"; the firmware's files live in
/data. Every answered screen is appended to /data/audit.jsonl (the firmware moves
it to audit.1.jsonl and bounds the two, docs/audit.md); errors go to
/data/device.log (moved to device.1.log at 16 KiB).
"""

import os
import select
import sys
import time

import machine
import micropython
import st7789
from board_base import BoardBase

FLASH_ROOT = "/data"
LOG_MAX = 16 * 1024

BAUD = 115200
RX_BUF = 4096
WRITE_TIMEOUT_MS = 3000  # a whole 8 KiB frame takes 0.7 s at 115200 baud
STEP_MS = 10  # how often wait() looks at the line and the buttons

DEBOUNCE_MS = 30
HOLD_MS = 1000
ENTRY_HOLD_MS = 600  # select/delete in a text prompt
INPUT_ROWS = 2  # a text prompt's typed-text and wheel rows

# T-Display wiring
PIN_MOSI, PIN_SCLK, PIN_CS, PIN_DC, PIN_RST, PIN_BL = 19, 18, 5, 16, 23, 4
PIN_LEFT, PIN_RIGHT = 0, 35
SPI_BAUD = 30_000_000

WHITE = 0xFFFF
BLACK = 0x0000
GREY = 0x8410
YELLOW = 0xFFE0
GREEN = 0x07E0

TITLE_H = 12  # title and footer: 1x font
FOOT_H = 12
BODY_SCALE = 2  # 8x8 glyphs are 0.85 mm tall on this glass: doubled for reading

APPROVE = "approve"
REJECT = "reject"

SHORT = 1  # what one button reports
HOLD = 2
L_SHORT, L_HOLD, R_SHORT, R_HOLD = 1, 2, 3, 4  # what the screen acts on
KEYS = {R_SHORT: "next", L_SHORT: "prev", R_HOLD: "select", L_HOLD: "delete"}


# ---- serial line
class UartChannel:
    def __init__(self, uart):
        self.uart = uart
        self._buf = bytearray(1024)

    def pending(self):
        return self.uart.any() > 0

    def read_available(self):
        if not self.uart.any():
            return b""
        n = self.uart.readinto(self._buf)  # timeout=0: what has arrived, or None
        return bytes(self._buf[:n]) if n else b""

    def write(self, data):
        return _write_all(self.uart.write, data)


class StreamChannel:
    """The line over stdin/stdout (stock builds: UART0 belongs to the REPL)."""

    def __init__(self, rx, tx):
        self.rx = rx
        self.tx = tx
        self._poll = select.poll()
        self._poll.register(rx, select.POLLIN)
        self._one = bytearray(1)
        self._buf = bytearray(256)

    def pending(self):
        return bool(self._poll.poll(0))

    def read_available(self):
        # A stdin read blocks until it has all it asked for: take one byte
        # at a time while poll says one is there.
        buf = self._buf
        n = 0
        while n < len(buf) and self._poll.poll(0):
            if not self.rx.readinto(self._one):
                break
            buf[n] = self._one[0]
            n += 1
        return bytes(buf[:n])

    def write(self, data):
        return _write_all(self.tx.write, data)


def _write_all(write, data):
    """Write everything or give up after WRITE_TIMEOUT_MS (never hang)."""
    mv = memoryview(data)
    deadline = time.ticks_add(time.ticks_ms(), WRITE_TIMEOUT_MS)
    while len(mv):
        n = write(mv[:512])
        if n:
            mv = mv[n:]
        if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
            return not len(mv)
        if not n:
            time.sleep_ms(1)
    return True


def open_serial():
    """(channel, note): machine.UART when UART0 is free, else stdin/stdout."""
    try:
        uart = machine.UART(0, BAUD, tx=1, rx=3, rxbuf=RX_BUF, timeout=0)
        uart.any()  # raises if the REPL still owns UART0
        return UartChannel(uart), None
    except (ValueError, OSError) as e:
        note = "serial: UART0 belongs to the REPL (%s); using stdin/stdout, 260-byte receive ring" % e
        return StreamChannel(sys.stdin.buffer, sys.stdout.buffer), note


# ---- buttons
class Button:
    """One active-low button: SHORT on release, HOLD once when held HOLD_MS."""

    def __init__(self, pin):
        self.pin = pin
        self.raw = False
        self.since = 0  # when raw last changed
        self.down = False  # debounced state
        self.down_at = 0
        self.fired = False  # this press has given its event (or must give none)
        self.ignore = False
        self.hold_ms = HOLD_MS

    def block(self):
        # A press already under way when a screen appears counts for nothing.
        self.ignore = self.raw or self.down
        if self.down:
            self.fired = True

    def scan(self, now):
        raw = self.pin.value() == 0
        if raw != self.raw:
            self.raw = raw
            self.since = now
            return None
        if time.ticks_diff(now, self.since) < DEBOUNCE_MS:
            return None
        if not raw:
            was = self.down and not self.fired
            self.down = False
            self.ignore = False
            return SHORT if was else None
        if not self.down:
            self.down = True
            self.down_at = self.since
            self.fired = self.ignore
            return None
        if not self.fired and time.ticks_diff(now, self.down_at) >= self.hold_ms:
            self.fired = True
            return HOLD
        return None


# ---- text layout
def _ascii(s):
    # The built-in font has printable ASCII only; anything else shows as '?',
    # one cell per character, so that wrapping stays exact.
    return "".join(c if " " <= c <= "~" else "?" for c in s)


def wrap(text, cols):
    out = []
    for para in str(text).split("\n"):
        line = ""
        for word in _ascii(para).split(" "):
            while len(word) > cols:  # addresses, keys: start a line, cut
                if line:
                    out.append(line)
                    line = ""
                out.append(word[:cols])
                word = word[cols:]
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= cols:
                line += " " + word
            else:
                out.append(line)
                line = word
        out.append(line)
    return out


def _is_warning(line):
    return str(line)[:7].lower() == "warning"


COLORS = (WHITE, YELLOW, GREEN)  # a body line: plain, warning, text-entry wheel


class Board(BoardBase):
    name = "esp32"
    model = "amanat-esp32"
    default_network = "main"
    auto_confirm = False
    debug = None  # no DebugLink on a real device

    def __init__(self, flash_root=FLASH_ROOT):
        self.flash_root = flash_root
        micropython.kbd_intr(-1)  # 0x03 is data on this line, never Ctrl-C
        self.serial, self._note = open_serial()
        Pin = machine.Pin
        self.left = Button(Pin(PIN_LEFT, Pin.IN, Pin.PULL_UP))
        # GPIO35 is input-only with no internal pull: the board pulls it up.
        self.right = Button(Pin(PIN_RIGHT, Pin.IN))
        spi = machine.SPI(1, baudrate=SPI_BAUD, polarity=0, phase=0, sck=Pin(PIN_SCLK), mosi=Pin(PIN_MOSI))
        self.display = st7789.ST7789(spi, Pin(PIN_CS, Pin.OUT, value=1), Pin(PIN_DC, Pin.OUT, value=0),
                                     Pin(PIN_RST, Pin.OUT, value=1), Pin(PIN_BL, Pin.OUT, value=0))
        self.display.init()
        self.cols = self.display.columns(BODY_SCALE)
        self.pitch = st7789.FONT * BODY_SCALE + 2
        self.rows = (self.display.height - TITLE_H - FOOT_H) // self.pitch
        self._screen = None
        self._kind = None
        self._lines = []
        self._warn = bytearray()
        self._page = 0
        self._pages = 1
        self._event = None
        self._status("Starting")

    # ---- the device key
    def device_key(self):
        """Development boards: 32 random bytes in NVS (its own partition, not
        the filesystem), made at the first boot. The production build derives
        it from an eFuse key through the HMAC peripheral, with flash (and NVS)
        encryption on, so that it is never readable (docs/threat-model.md)."""
        import esp32

        nvs = esp32.NVS("amanat")
        key = bytearray(32)
        try:
            n = nvs.get_blob("device_key", key)
        except OSError:
            n = 0
        if n != 32:
            key[:] = os.urandom(32)
            nvs.set_blob("device_key", key)
            nvs.commit()
        return key

    # ---- flash and logs
    def mount_flash(self):
        try:
            os.stat(self.flash_root)
        except OSError:
            os.mkdir(self.flash_root)
        if self._note:
            self.log(self._note)
            self._note = None

    def _open_log(self, name, limit):
        """Open flash_root/name for appending, first moving it to name.1 (over
        the older one) once it has reached `limit` bytes."""
        path = self.flash_root + "/" + name
        try:
            if os.stat(path)[6] >= limit:
                stem, ext = name.rsplit(".", 1)
                old = self.flash_root + "/" + stem + ".1." + ext
                try:
                    os.remove(old)
                except OSError:
                    pass
                os.rename(path, old)
        except OSError:
            pass  # no file yet
        return open(path, "a")

    def record_screen(self, record, write):
        # The audit trail: a failure to write it raises, so that an answer
        # that was not recorded is not acted on. The firmware bounds it and
        # moves it to the archive (signer/audit.py): nothing is dropped here.
        with open(self.flash_root + "/audit.jsonl", "a") as f:
            write(f)  # streamed: a long review needs no big string
            f.write("\n")
        # The UI records a screen as it takes it down.
        self._screen = None
        answer = record.get("answer")
        self._status({APPROVE: "Approved", REJECT: "Rejected", None: "Cancelled"}.get(answer, "Done"))

    def audit_files(self):
        return [self.flash_root + "/audit.1.jsonl", self.flash_root + "/audit.jsonl"]

    def log(self, text):
        try:
            with self._open_log("device.log", LOG_MAX) as f:
                f.write(text)
                f.write("\n")
        except OSError:
            pass  # logging must never take the device down

    def log_exception(self, e):
        try:
            with self._open_log("device.log", LOG_MAX) as f:
                sys.print_exception(e, f)
        except OSError:
            pass

    # ---- time and input
    def ticks_ms(self):
        return time.ticks_ms()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def wait(self, timeout_ms):
        """Sleep until the line has input, a button event is waiting, or
        timeout_ms has passed."""
        deadline = time.ticks_add(self.ticks_ms(), timeout_ms)
        while True:
            self._scan()
            if self._event is not None or self.serial.pending():
                return
            left = time.ticks_diff(deadline, self.ticks_ms())
            if left <= 0:
                return
            self.sleep_ms(STEP_MS if left > STEP_MS else left)

    def _scan(self):
        now = self.ticks_ms()
        lev = self.left.scan(now)
        rev = self.right.scan(now)
        if self._screen is None or self._event is not None:
            return  # nothing on screen to act on, or an event not yet taken
        if lev == HOLD:
            self._event = L_HOLD
        elif lev == SHORT:
            self._event = L_SHORT
        elif rev == HOLD and not self.left.down:
            self._event = R_HOLD
        elif rev == SHORT:
            self._event = R_SHORT

    def key(self):
        """A text prompt's key: "next", "prev", "select", "delete" or None."""
        self._scan()
        ev, self._event = self._event, None
        if ev is None or self._kind != "text":
            return None
        return KEYS[ev]

    def buttons(self):
        """APPROVE or REJECT when the officer answered; None otherwise (page
        turns are handled here)."""
        self._scan()
        ev, self._event = self._event, None
        if ev is None or self._screen is None or self._kind == "text":
            return None
        confirm = self._kind == "confirm"
        last = self._page >= self._pages - 1
        if ev == L_HOLD:
            return REJECT if confirm else None
        if ev == R_HOLD and last:
            return APPROVE if confirm else None
        if ev in (R_SHORT, R_HOLD) and not last:
            self._page += 1
            self._draw()
        elif ev == L_SHORT and self._page > 0:
            self._page -= 1
            self._draw()
        return None

    # ---- display
    def show(self, screen):
        self._kind = screen.get("kind")
        text = self._kind == "text"
        lines = [""] * INPUT_ROWS if text else []
        warn = bytearray(b"\x00\x02" if text else b"")
        err = screen.get("error") if text else None
        body = screen.get("lines") or ()
        if err:  # first, or it would fall off the one page
            body = [err] + [line for line in body if line != err]
        for line in body:
            part = wrap(line, self.cols)
            lines.extend(part)
            warn.extend(b"\x01" * len(part) if _is_warning(line) or (err and line == err) else bytes(len(part)))
        if text:
            del lines[self.rows:]  # the buttons type here: no pages
        self._screen = screen
        self._lines = lines
        self._warn = warn
        self._page = 0
        self._pages = max(1, (len(lines) + self.rows - 1) // self.rows)
        self._event = None
        hold = ENTRY_HOLD_MS if text else HOLD_MS
        for b in (self.left, self.right):
            b.hold_ms = hold
            b.block()
        self._draw()

    def show_input(self, lines):
        """Redraw only the typed-text rows of the text prompt on screen; the
        buttons are not blocked (the officer may already be pressing on)."""
        if self._kind != "text":
            return
        for r in range(INPUT_ROWS):
            s = _ascii(lines[r])[:self.cols] if r < len(lines) else ""
            if r:  # the wheel, centred
                s = " " * ((self.cols - len(s)) // 2) + s
            self._lines[r] = s
            self._row(r, r)

    def _status(self, text):
        # Between prompts: no pages, no button hints.
        self._lines = wrap(text, self.cols)
        self._warn = bytes(len(self._lines))
        self._page = 0
        self._pages = 1
        self._kind = None
        self._render("Amanat", "")

    def _draw(self):
        self._render((self._screen or {}).get("title") or "", self._footer())

    def _render(self, title, footer):
        d = self.display
        d.text(0, _ascii(str(title)), BLACK, WHITE, 1, TITLE_H)
        first = self._page * self.rows
        for r in range(self.rows):
            self._row(r, first + r)
        y = TITLE_H + self.rows * self.pitch
        d.fill_rect(0, y, d.width, d.height - FOOT_H - y, BLACK)
        can_approve = self._kind == "confirm" and self._page == self._pages - 1
        d.text(d.height - FOOT_H, footer, BLACK, GREEN if can_approve else GREY, 1, FOOT_H)

    def _row(self, r, i):
        """Body row r shows line i (or nothing)."""
        d = self.display
        y = TITLE_H + r * self.pitch
        if i < len(self._lines):
            d.text(y, self._lines[i], COLORS[self._warn[i]], BLACK, BODY_SCALE, self.pitch)
        else:
            d.fill_rect(0, y, d.width, self.pitch, BLACK)

    def _footer(self):
        cols = self.display.columns(1)
        if self._kind == "text":
            left, right = "<prev hold:del", "hold:pick next>"
            return left + " " * (cols - len(left) - len(right)) + right
        page = "%d/%d" % (self._page + 1, self._pages)
        last = self._page >= self._pages - 1
        if self._kind == "confirm":
            left = "<back hold:NO" if self._page else "<hold:NO"
            right = "hold:YES>" if last else "next>"
        else:
            left = "<back" if self._page else ""
            right = "" if last else "next>"
        gap = cols - len(left) - len(page) - len(right)
        return left + " " * (gap // 2) + page + " " * (gap - gap // 2) + right

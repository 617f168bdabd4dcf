"""Checks of boards/esp32/board.py, run by the unix `micropython` binary.

tests/boards/test_esp32_board.py runs this with a fake `machine` module and
boards/esp32 on the import path, and
reads one JSON document per check from stdout. AMANAT_TEST_FLASH names an
empty temporary folder standing in for the flash.
"""

import gc
import hashlib
import json
import os
import time
from binascii import hexlify

import framebuf
import machine

import board
import st7789
from signer import audit

FLASH = os.getenv("AMANAT_TEST_FLASH")


def emit(name, **kw):
    kw["check"] = name
    print(json.dumps(kw))


b = board.Board(flash_root=FLASH + "/data")
spi = machine.SPI.last
panel = spi.panel
X0, Y0 = st7789.X_OFFSET, st7789.Y_OFFSET
panel.visible = (X0, Y0, X0 + 239, Y0 + 134)

# ---- flash
existed = "data" in os.listdir(FLASH)
b.mount_flash()
b.mount_flash()  # a second start finds the folder there
emit("flash", existed_before=existed, exists=os.stat(FLASH + "/data")[0] & 0x4000 != 0)

# ---- the device key (NVS, not the filesystem)
k1, k2 = b.device_key(), b.device_key()
files = b"".join(open(FLASH + "/data/" + n, "rb").read() for n in os.listdir(FLASH + "/data"))
emit("device_key", length=len(k1), same=k1 == k2, in_flash=bytes(k1) in files, hmac=len(b.device_hmac(b"x")))

# ---- display init
emit("init", cmds=panel.cmds[:9], spi_id=spi.id, baud=spi.baudrate,
     backlight=machine.Pin.pins[board.PIN_BL].v, pixels=panel.pixels)

# ---- serial
uart = machine.UART.last
data = bytes(range(256)) * 6  # 0x03 included: data, not Ctrl-C
uart.rx.extend(data)
got = bytearray()
reads = 0
while True:
    chunk = b.serial.read_available()
    if not chunk:
        break
    got.extend(chunk)
    reads += 1
t = time.ticks_ms()
empty = b.serial.read_available()
empty_ms = time.ticks_diff(time.ticks_ms(), t)
out = bytes(range(256)) * 12
ok = b.serial.write(out)
t = time.ticks_ms()
b.wait(60)
idle_ms = time.ticks_diff(time.ticks_ms(), t)
uart.rx.extend(b"AM")
t = time.ticks_ms()
b.wait(2000)
woke_ms = time.ticks_diff(time.ticks_ms(), t)
b.serial.read_available()
emit("serial", uart=[uart.id, uart.baudrate, uart.rxbuf, uart.timeout], roundtrip=bytes(got) == data,
     reads=reads, empty=empty, empty_ms=empty_ms, write_ok=ok, tx_ok=bytes(uart.tx) == out,
     uart_writes=uart.writes, idle_ms=idle_ms, woke_ms=woke_ms)

# The stdin/stdout channel of stock builds, over files here.
with open(FLASH + "/rx.bin", "wb") as f:
    f.write(data)
with open(FLASH + "/rx.bin", "rb") as rx, open(FLASH + "/tx.bin", "wb") as tx:
    ch = board.StreamChannel(rx, tx)
    got = bytearray()
    while True:
        chunk = ch.read_available()
        if not chunk:
            break
        got.extend(chunk)
    ok = ch.write(out)
with open(FLASH + "/tx.bin", "rb") as f:
    sent = f.read()
emit("stream", roundtrip=bytes(got) == data, write_ok=ok, tx_ok=sent == out)

# ---- rendering: what the panel holds against framebuf's own drawing
def text_errors(x, y, s, fg, bg, scale):
    w = len(s) * 8
    buf = bytearray((w + 7) // 8 * 8)
    fb = framebuf.FrameBuffer(buf, w, 8, framebuf.MONO_HLSB)
    fb.text(s, 0, 0, 1)
    bad = 0
    for py in range(8 * scale):
        for px in range(w * scale):
            want = fg if fb.pixel(px // scale, py // scale) else bg
            if panel.pixel(X0 + x + px, Y0 + y + py) != want:
                bad += 1
    return bad


ADDR = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
review = {"screen": "review_tx", "title": "Send bitcoin?", "kind": "confirm",
          "lines": ["Send 0.01000000 BTC to " + ADDR, "Change 0.00500000 BTC to " + ADDR,
                    "Fee 0.00001410 BTC (2.5 sat/vB)", "Warning: the fee is high"] + ["more"] * 6}
w0, p0 = spi.writes, panel.pixels
b.show(review)
writes, pixels = spi.writes - w0, panel.pixels - p0
pitch = b.pitch
top = (pitch - 16) // 2
emit("show", cols=b.cols, rows=b.rows, pages=b._pages, lines=b._lines[:8], writes=writes, pixels=pixels,
     max_data=panel.max_data, outside=panel.outside, deselected=spi.deselected,
     title_errors=text_errors(0, 2, "Send bitcoin?", board.BLACK, board.WHITE, 1),
     body_errors=text_errors(0, board.TITLE_H + top, b._lines[0], board.WHITE, board.BLACK, 2),
     addr_errors=text_errors(0, board.TITLE_H + pitch + top, b._lines[1], board.WHITE, board.BLACK, 2),
     footer=b._footer(),
     footer_errors=text_errors(0, 135 - board.FOOT_H + 2, b._footer(), board.BLACK, board.GREY, 1))

# ---- buttons, on a clock of our own
clock = [1000]
b.ticks_ms = lambda: clock[0]
L = machine.Pin.pins[board.PIN_LEFT]
R = machine.Pin.pins[board.PIN_RIGHT]


def run(ms, step=10):
    """Let ms pass, polling as the UI does; the answers given."""
    out = []
    for _ in range(ms // step):
        clock[0] += step
        a = b.buttons()
        if a is not None:
            out.append(a)
    return out


def press(pin, ms):
    pin.value(0)
    out = run(ms)
    pin.value(1)
    return out + run(60)


def bounce(pin, ms):
    for _ in range(ms // 5):
        pin.value(1 - pin.value())
        clock[0] += 5
        b.buttons()
    pin.value(1)
    run(60)


res = {}
b.show(review)
res["pages"] = b._pages
res["short_right"] = [press(R, 100), b._page]
res["short_left"] = [press(L, 100), b._page]
res["left_on_first"] = [press(L, 100), b._page]
bounce(R, 25)
res["bounce"] = b._page
res["glitch"] = [press(R, 20), b._page]  # shorter than the debounce time
res["hold_right_early"] = [press(R, 1500), b._page]
while b._page < b._pages - 1:
    press(R, 100)
res["footer_last"] = b._footer()
res["hold_right_last"] = press(R, 1200)
b.show(review)
res["hold_left"] = press(L, 1200)
b.show(review)
res["short_hold_left"] = press(L, 900)
# a screen that fits one page: a hold approves at once
short = {"screen": "display_address", "title": "Address", "kind": "confirm", "lines": [ADDR]}
b.show(short)
res["one_page"] = [b._pages, b._footer(), press(R, 1100)]
# held from the previous prompt: nothing, until released and pressed again
R.value(0)
run(200)
b.show(short)
res["held_over"] = run(2000)
R.value(1)
run(60)
res["held_over_again"] = press(R, 1100)
# both held: never approve
b.show(short)
L.value(0)
R.value(0)
res["both"] = run(1500)
L.value(1)
R.value(1)
run(60)
# text prompts: no answers, no pages (the text entry uses key())
b.show({"screen": "unlock_pin", "title": "Enter PIN", "kind": "text", "lines": ["Unlock the device"]})
res["text"] = [press(R, 1200), press(L, 1200), b._footer()]
# taken down: buttons do nothing, and do not wake wait()
b.record_screen({"screen": "unlock_pin", "answer": "text"}, lambda f: f.write("{}"))
L.value(0)


def idle_sleep(ms):
    clock[0] += ms


b.sleep_ms = idle_sleep
t = clock[0]
b.wait(50)
res["idle_wait_ms"] = clock[0] - t
res["idle"] = run(1500)
L.value(1)
run(60)
emit("buttons", **res)

# ---- audit trail (the firmware's Trail over the board's files) and device log
os.remove(FLASH + "/data/audit.jsonl")  # the line the buttons' check took down
b.audit_capacity = 1200  # the archive is made at half of it
trail = audit.Trail(b)
for i in range(40):
    trail.append({"screen": "review_tx", "n": i, "title": "Send bitcoin? \u20bf",
                  "answer": "approve" if i % 2 else "reject"})
names = sorted(os.listdir(FLASH + "/data"))
with open(FLASH + "/data/audit.1.jsonl", "rb") as f:
    older = f.read().split(b"\n")
with open(FLASH + "/data/audit.jsonl", "rb") as f:
    newer = f.read().split(b"\n")
lines = [x for x in older + newer if x]
records = [json.loads(x) for x in lines]
links = all(records[k]["prev"] == hexlify(hashlib.sha256(lines[k - 1]).digest()).decode() for k in range(1, len(lines)))
emit("audit", names=names, files=b.audit_files(), sizes=[os.stat(p)[6] for p in b.audit_files()],
     ends=[older[-1], newer[-1]], ns=[r["n"] for r in records], seqs=[r["seq"] for r in records], links=links,
     last=lines[-1].decode(), trail=trail.to_dict())
trail = older = newer = lines = records = None  # the trail holds the board, and the board its fake panel
gc.collect()

board.LOG_MAX = 200
for i in range(60):
    b.log("line %d" % i)
try:
    raise ValueError("boom")
except ValueError as e:
    b.log_exception(e)
with open(FLASH + "/data/device.log") as f:
    log = f.read()
emit("log", names=sorted(n for n in os.listdir(FLASH + "/data") if n.startswith("device")), tail=log)

# ---- a stock build: UART0 refused (the REPL owns it), the line on stdin/stdout
machine.UART.refuse = "REPL UART buffer size is fixed"
os.mkdir(FLASH + "/stock")
s = board.Board(flash_root=FLASH + "/stock/data")
s.mount_flash()
with open(FLASH + "/stock/data/device.log") as f:
    note = f.read()
emit("stock", channel=type(s.serial).__name__, note=note)


# ---- a PIN typed on the buttons, through the UI's text entry
from signer.ui import UI

machine.UART.refuse = None
b = s = spi = panel = machine.SPI.last = None  # each fake panel holds 200 KB
gc.collect()
os.mkdir(FLASH + "/entry")
e = board.Board(flash_root=FLASH + "/entry/data")
e.mount_flash()
L = machine.Pin.pins[board.PIN_LEFT]
R = machine.Pin.pins[board.PIN_RIGHT]
WHEEL = "0123456789"  # then DEL, DONE: 12 choices round


class Finger:
    """Presses the buttons as an officer would, reading the wheel on the
    screen; time passes only in the board's sleep_ms, 10 ms at a time."""

    def __init__(self, todo):
        self.todo = todo  # digits, "DONE", or "delete" (hold left)
        self.pin = None  # the button held down, until self.up
        self.up = 0
        self.free = 0  # next press not before (the screen redraws)
        self.presses = []

    def tick(self, now):
        if self.pin is not None:
            if now >= self.up:
                self.pin.value(1)
                self.pin = None
                self.free = now + 80
            return
        if now < self.free or not self.todo:
            return
        want = self.todo[0]
        if want == "delete":
            self.press(L, 700, now, "hold L")
            return
        shown = e._lines[1].split()[1]
        if shown == want:
            self.press(R, 700, now, "hold R")
            return
        at = WHEEL.find(shown) if shown in WHEEL else 10 + (shown == "DONE")
        to = WHEEL.find(want) if want in WHEEL else 11
        if (to - at) % 12 <= 6:
            self.press(R, 100, now, "R")
        else:
            self.press(L, 100, now, "L")

    def press(self, pin, ms, now, what):
        self.presses.append(what)
        if what.startswith("hold"):
            self.todo.pop(0)
        pin.value(0)
        self.pin = pin
        self.up = now + ms


finger = Finger(["2", "5", "delete", "5", "8", "0", "DONE"])
clock = [5000]


def sleep(ms):
    for _ in range(ms // 10 or 1):
        clock[0] += 10
        finger.tick(clock[0])


e.ticks_ms = lambda: clock[0]
e.sleep_ms = sleep
drawn = []
text = e.display.text
e.display.text = lambda y, s, *a: (drawn.append([y, s]), text(y, s, *a))


class App:
    board = e
    pumps = 0
    busy = None  # no host request: the PIN prompt is the officer's (ui.py never cancels it)

    def pump(self, busy):
        App.pumps += 1

    def record(self, record):
        App.trail.append(record)


App.trail = audit.Trail(e)
ui = UI(App())
screen = {"screen": "setup_pin", "title": "Choose a PIN", "lines": ["4 to 12 digits", "The PINs differ, try again"],
          "error": "The PINs differ, try again", "entry": "pin"}
t0 = clock[0]
pin = ui.ask_text(screen)
with open(FLASH + "/entry/data/audit.jsonl") as f:
    audit = f.read()
emit("pin_entry", pin=pin.decode(), presses=finger.presses, left=finger.todo, ms=clock[0] - t0, pumps=App.pumps,
     drawn=drawn, audit=audit, rows=[board.TITLE_H + r * e.pitch for r in range(e.rows)],
     files=sorted(os.listdir(FLASH + "/entry/data")))

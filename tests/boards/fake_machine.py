"""A stand-in for the ESP32's `machine` module, for boards/esp32 under the unix port.

Copied into a temporary folder as `machine.py`. Pins hold values the test can
set; the UART is two in-memory buffers; the SPI bus feeds a model of the
ST7789 (commands, address window, pixel RAM) so that a test can read back
what the panel would show.
"""


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    pins = {}

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.v = 1 if value is None else value  # inputs idle high (pulled up)
        Pin.pins[id] = self

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = 1 if v else 0

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.v = 1

    def off(self):
        self.v = 0


class UART:
    refuse = None  # a message: refuse like a UART0 that the REPL owns
    last = None

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, tx=None, rx=None,
                 txbuf=256, rxbuf=256, timeout=0, timeout_char=0):
        if UART.refuse:
            raise ValueError(UART.refuse)
        self.id = id
        self.baudrate = baudrate
        self.rxbuf = rxbuf
        self.timeout = timeout
        self.rx = bytearray()
        self.tx = bytearray()
        self.max_write = 64  # partial writes, as from a full TX ring
        self.writes = 0
        UART.last = self

    def any(self):
        return len(self.rx)

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        if not n:
            return None  # non-blocking read, nothing there
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def write(self, buf):
        self.writes += 1
        n = min(len(buf), self.max_write)
        self.tx.extend(bytes(buf[:n]))
        return n


class Panel:
    """The ST7789 as seen over SPI: command bytes (DC low), their parameters
    and pixel data (DC high) into a 320x320 RAM of big-endian RGB565."""

    SIZE = 320

    def __init__(self):
        self.ram = bytearray(self.SIZE * self.SIZE * 2)
        self.cmds = []
        self.cmd = None
        self.args = bytearray()
        self.win = [0, 0, 0, 0]
        self.x = self.y = 0
        self.pixels = 0
        self.max_data = 0
        self.outside = 0  # pixels written outside `visible`
        self.visible = None  # (x0, y0, x1, y1) in RAM coordinates, set by the test

    def feed(self, dc, data):
        if not dc:
            for c in data:
                self.cmd = c
                self.cmds.append(c)
                self.args = bytearray()
                if c == 0x2C:
                    self.x, self.y = self.win[0], self.win[2]
            return
        self.max_data = max(self.max_data, len(data))
        if self.cmd != 0x2C:
            self.args.extend(data)
            a = self.args
            if self.cmd == 0x2A and len(a) == 4:
                self.win[0], self.win[1] = (a[0] << 8) | a[1], (a[2] << 8) | a[3]
            elif self.cmd == 0x2B and len(a) == 4:
                self.win[2], self.win[3] = (a[0] << 8) | a[1], (a[2] << 8) | a[3]
            return
        i = 0
        while i < len(data):
            n = min((self.win[1] - self.x + 1) * 2, len(data) - i)
            o = (self.y * self.SIZE + self.x) * 2
            self.ram[o:o + n] = data[i:i + n]
            self._count(n // 2)
            i += n
            self.x += n // 2
            if self.x > self.win[1]:
                self.x = self.win[0]
                self.y += 1

    def _count(self, n):
        self.pixels += n
        v = self.visible
        if v and not (v[0] <= self.x and self.x + n - 1 <= v[2] and v[1] <= self.y <= v[3]):
            self.outside += n

    def pixel(self, x, y):
        o = (y * self.SIZE + x) * 2
        return (self.ram[o] << 8) | self.ram[o + 1]


class SPI:
    CS = 5  # the T-Display's chip select and data/command pins
    DC = 16
    last = None

    def __init__(self, id, baudrate=1000000, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        self.id = id
        self.baudrate = baudrate
        self.panel = Panel()
        self.writes = 0
        self.deselected = 0  # writes while CS was high: lost on a real bus
        SPI.last = self

    def write(self, buf):
        self.writes += 1
        if Pin.pins[SPI.CS].v:
            self.deselected += 1
            return
        self.panel.feed(Pin.pins[SPI.DC].v, bytes(buf))

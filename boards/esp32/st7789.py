"""Minimal ST7789 driver: the LILYGO T-Display's 135x240 IPS panel, landscape.

Only what the board needs: init, filled rectangles, and full-width bands of
text in framebuf's built-in 8x8 font. There is no full-screen buffer (a
240x135 RGB565 frame is 64 KB, most of the heap of an ESP32 without PSRAM):
a band of text is drawn 1 bit per pixel into a small MONO_HLSB framebuf and
expanded to RGB565 one pixel row at a time into a reused 480-byte buffer.
"""

import time

import framebuf

_SWRESET = 0x01
_SLPOUT = 0x11
_NORON = 0x13
_INVON = 0x21
_DISPON = 0x29
_CASET = 0x2A
_RASET = 0x2B
_RAMWR = 0x2C
_MADCTL = 0x36
_COLMOD = 0x3A

# MADCTL MX|MV: landscape. The 135x240 glass sits inside the controller's
# 240x320 RAM at column 40, row 53 in this orientation (52 for MY|MV).
LANDSCAPE = 0x60
X_OFFSET = 40
Y_OFFSET = 53

FONT = 8  # framebuf's built-in font: 8x8 pixels


def rgb565(r, g, b):
    return ((r & 0xF8) << 8) | ((g & 0xFC) << 3) | (b >> 3)


class ST7789:
    def __init__(self, spi, cs, dc, rst, backlight, width=240, height=135,
                 xoff=X_OFFSET, yoff=Y_OFFSET, madctl=LANDSCAPE):
        self.spi = spi
        self.cs = cs
        self.dc = dc
        self.rst = rst
        self.bl = backlight
        self.width = width
        self.height = height
        self.xoff = xoff
        self.yoff = yoff
        self.madctl = madctl
        self.line = bytearray(width * 2)  # one pixel row of RGB565
        self._b1 = bytearray(1)
        self._b4 = bytearray(4)
        self._bits = bytearray(width // FONT * FONT)  # one band of 1-bit text
        self._nibbles = {}  # (fg, bg, scale) -> 16 RGB565 expansions of 4 pixels
        cs(1)

    # ---- bus
    def _cmd(self, cmd, data=None):
        self._b1[0] = cmd
        self.cs(0)
        self.dc(0)
        self.spi.write(self._b1)
        if data:
            self.dc(1)
            self.spi.write(data)
        self.cs(1)

    def _window(self, x, y, w, h):
        b = self._b4
        x0 = x + self.xoff
        x1 = x0 + w - 1
        b[0], b[1], b[2], b[3] = x0 >> 8, x0 & 0xFF, x1 >> 8, x1 & 0xFF
        self._cmd(_CASET, b)
        y0 = y + self.yoff
        y1 = y0 + h - 1
        b[0], b[1], b[2], b[3] = y0 >> 8, y0 & 0xFF, y1 >> 8, y1 & 0xFF
        self._cmd(_RASET, b)
        self._cmd(_RAMWR)
        # Pixel data follows: CS stays low and DC high until _end().
        self.cs(0)
        self.dc(1)

    def _end(self):
        self.cs(1)

    # ---- setup
    def init(self):
        self.rst(1)
        time.sleep_ms(5)
        self.rst(0)
        time.sleep_ms(20)
        self.rst(1)
        time.sleep_ms(150)
        self._cmd(_SWRESET)
        time.sleep_ms(150)
        self._cmd(_SLPOUT)
        time.sleep_ms(120)  # the datasheet's wait after sleep out
        self._cmd(_COLMOD, b"\x55")  # 16 bits per pixel
        self._cmd(_MADCTL, bytes((self.madctl,)))
        self._cmd(_INVON)  # IPS glass: colours are inverted otherwise
        self._cmd(_NORON)
        self.fill(0)  # clear the RAM before the panel shows it
        self._cmd(_DISPON)
        time.sleep_ms(10)
        self.backlight(True)

    def backlight(self, on):
        self.bl(1 if on else 0)

    # ---- drawing
    def fill_rect(self, x, y, w, h, color):
        if w <= 0 or h <= 0:
            return
        line = self.line
        hi = color >> 8
        lo = color & 0xFF
        for i in range(0, w * 2, 2):
            line[i] = hi
            line[i + 1] = lo
        row = memoryview(line)[: w * 2]
        self._window(x, y, w, h)
        for _ in range(h):
            self.spi.write(row)
        self._end()

    def fill(self, color):
        self.fill_rect(0, 0, self.width, self.height, color)

    def columns(self, scale=1):
        return self.width // (FONT * scale)

    def text(self, y, s, fg, bg, scale=1, h=None):
        """One band across the whole width at row y, h pixels high (at least
        the glyph height), the text vertically centred, clipped at the right."""
        gh = FONT * scale
        if h is None or h < gh:
            h = gh
        cols = self.columns(scale)
        buf = self._bits
        # A FrameBuffer is a small view over the reused buffer: cheap to make.
        fb = framebuf.FrameBuffer(buf, cols * FONT, FONT, framebuf.MONO_HLSB)
        fb.fill(0)
        fb.text(s[:cols], 0, 0, 1)
        nib = self._table(fg, bg, scale)
        stride = cols  # bytes per 1-bit row (8 pixels each)
        step = 8 * scale  # RGB565 bytes of one nibble (4 pixels, scaled)
        line = self.line
        row = memoryview(line)[: cols * gh * 2]
        top = (h - gh) // 2
        self._window(0, y, cols * gh, h)
        blank = nib[0]
        for i in range(0, len(row), step):
            line[i:i + step] = blank
        for _ in range(top):
            self.spi.write(row)
        for r in range(FONT):
            o = 0
            for i in range(r * stride, (r + 1) * stride):
                b = buf[i]
                line[o:o + step] = nib[b >> 4]
                line[o + step:o + 2 * step] = nib[b & 15]
                o += 2 * step
            for _ in range(scale):
                self.spi.write(row)
        for i in range(0, len(row), step):
            line[i:i + step] = blank
        for _ in range(h - top - gh):
            self.spi.write(row)
        self._end()

    def _table(self, fg, bg, scale):
        key = (fg, bg, scale)
        nib = self._nibbles.get(key)
        if nib is None:
            if len(self._nibbles) > 8:
                self._nibbles.clear()
            nib = []
            for n in range(16):
                out = bytearray()
                for bit in (8, 4, 2, 1):  # MONO_HLSB: the high bit is leftmost
                    c = fg if n & bit else bg
                    for _ in range(scale):
                        out.append(c >> 8)
                        out.append(c & 0xFF)
                nib.append(bytes(out))
            self._nibbles[key] = nib
        return nib

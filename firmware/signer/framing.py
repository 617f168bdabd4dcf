"""Frames of the wire protocol (docs/protocol.md, "Frames").

magic "AM", version, flags, u32 BE length, payload, CRC-32 BE of all before.
FrameReader turns a byte stream into payloads and FrameErrors, in order.
"""

import binascii
import time

MAGIC = b"AM"
VERSION = 1
HEADER_SIZE = 8
MAX_PAYLOAD = 8192
FRAME_TIMEOUT_MS = 2000
LINE_BAUD = 115200  # the protocol's line rate: a frame's length buys it time at this rate

try:
    ticks_diff = time.ticks_diff  # MicroPython ticks wrap around
except AttributeError:

    def ticks_diff(a, b):
        return a - b


class FrameError(ValueError):
    pass


def _crc(data):
    return (binascii.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")


def parts(payload):
    """A frame as (header, crc) around the payload, so that a large answer
    is written in three pieces and never copied into a frame-sized buffer
    (each copy wants a fresh contiguous block of a fragmented heap)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too long")
    head = bytearray(MAGIC)
    head.append(VERSION)
    head.append(0)
    head.extend(len(payload).to_bytes(4, "big"))
    crc = binascii.crc32(payload, binascii.crc32(head)) & 0xFFFFFFFF
    return head, crc.to_bytes(4, "big")


def encode(payload):
    head, crc = parts(payload)
    return bytes(head) + bytes(payload) + crc


class FrameReader:
    """A frame must arrive whole within FRAME_TIMEOUT_MS of its first byte,
    plus the time its length takes at LINE_BAUD; otherwise it is dropped.
    Counting from the first byte, not the last, matters: a length damaged on
    the line would otherwise swallow every later frame that keeps arriving
    in time, up to 8 KB of them.

    The buffer is one frame long and allocated once: a buffer grown and cut
    per frame left holes in a small heap that a long upload (hundreds of
    chunks) turned into an out-of-memory at a heap where short ones sign."""

    def __init__(self, max_payload=MAX_PAYLOAD):
        self._max = max_payload
        self._size = HEADER_SIZE + max_payload + 4
        self._buf = bytearray(self._size)
        self._mv = memoryview(self._buf)
        self._start = 0  # the bytes not yet parsed are _buf[_start:_end]
        self._end = 0
        self._first = 0  # when the frame at _start began to arrive
        self._now = 0

    def feed(self, data, now_ms):
        # A frame past its time ends even when expire() was not called in between.
        out = self.expire(now_ms)
        if not data:
            return out
        self._now = now_ms
        if self._start == self._end:
            self._first = now_ms
        data = memoryview(data)
        pos = 0
        # Take only what fits so the buffer stays within one whole frame;
        # a full buffer always holds a complete frame or skippable bytes.
        while pos < len(data):
            if self._end == self._size:
                self._compact()
            take = min(self._size - self._end, len(data) - pos)
            self._mv[self._end : self._end + take] = data[pos : pos + take]
            self._end += take
            pos += take
            self._parse(out)
        return out

    def _compact(self):
        # Move the unparsed bytes to the front in pieces that never overlap.
        s, n = self._start, self._end - self._start
        step = min(s, 512)
        mv = self._mv
        for i in range(0, n, step):
            k = min(step, n - i)
            mv[i : i + k] = mv[s + i : s + i + k]
        self._start, self._end = 0, n

    def _allowed_ms(self):
        s = self._start
        n = int.from_bytes(self._buf[s + 4 : s + 8], "big") if self._end - s >= HEADER_SIZE else 0
        return FRAME_TIMEOUT_MS + (HEADER_SIZE + min(n, self._max) + 4) * 10_000 // LINE_BAUD

    def expire(self, now_ms):
        if self._end > self._start and ticks_diff(now_ms, self._first) > self._allowed_ms():
            partial = self._buf[self._start : self._start + 2] == MAGIC
            self._start = self._end = 0
            if partial:
                return [FrameError("frame timed out")]
        return []

    def _drop(self, n):
        self._start += n
        if self._start == self._end:
            self._start = self._end = 0
        self._first = self._now  # what is left begins a frame (at the latest) now

    def _parse(self, out):
        buf = self._buf
        while True:
            s, e = self._start, self._end
            i = buf.find(MAGIC, s, e)
            if i < 0:
                # Keep a trailing "A": it may start the next magic.
                self._drop(e - s - 1 if e > s and buf[e - 1] == MAGIC[0] else e - s)
                return
            if i > s:
                self._drop(i - s)
                continue
            if e - s < HEADER_SIZE:
                return
            n = int.from_bytes(buf[s + 4 : s + 8], "big")
            reason = None
            if buf[s + 2] != VERSION:
                reason = "unsupported version"
            elif buf[s + 3] != 0:
                reason = "unsupported flags"
            elif n > self._max:
                reason = "payload too long"
            if reason:
                # Resynchronise on the next magic after this one.
                out.append(FrameError(reason))
                self._drop(len(MAGIC))
                continue
            end = s + HEADER_SIZE + n
            if e < end + 4:
                return
            if _crc(self._mv[s:end]) != buf[end : end + 4]:
                out.append(FrameError("bad crc"))
            else:
                out.append(bytes(self._mv[s + HEADER_SIZE : end]))
            self._drop(end + 4 - s)

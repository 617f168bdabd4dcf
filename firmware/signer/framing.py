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
_MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + 4

try:
    ticks_diff = time.ticks_diff  # MicroPython ticks wrap around
except AttributeError:

    def ticks_diff(a, b):
        return a - b


class FrameError(ValueError):
    pass


def _crc(data):
    return (binascii.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")


def encode(payload):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too long")
    frame = bytearray(MAGIC)
    frame.append(VERSION)
    frame.append(0)
    frame.extend(len(payload).to_bytes(4, "big"))
    frame.extend(payload)
    frame.extend(_crc(frame))
    return bytes(frame)


class FrameReader:
    """A frame must arrive whole within FRAME_TIMEOUT_MS of its first byte,
    plus the time its length takes at LINE_BAUD; otherwise it is dropped.
    Counting from the first byte, not the last, matters: a length damaged on
    the line would otherwise swallow every later frame that keeps arriving
    in time, up to 8 KB of them."""

    def __init__(self):
        self._buf = bytearray()
        self._first = 0  # when the frame at the buffer's start began to arrive
        self._now = 0

    def feed(self, data, now_ms):
        # A frame past its time ends even when expire() was not called in between.
        out = self.expire(now_ms)
        if not data:
            return out
        self._now = now_ms
        if not self._buf:
            self._first = now_ms
        data = memoryview(data)
        pos = 0
        # Take only what fits so the buffer stays within one whole frame;
        # a full buffer always holds a complete frame or skippable bytes.
        while pos < len(data):
            take = min(_MAX_FRAME - len(self._buf), len(data) - pos)
            self._buf.extend(data[pos : pos + take])
            pos += take
            self._parse(out)
        return out

    def _allowed_ms(self):
        buf = self._buf
        n = int.from_bytes(buf[4:8], "big") if len(buf) >= HEADER_SIZE else 0
        return FRAME_TIMEOUT_MS + (HEADER_SIZE + min(n, MAX_PAYLOAD) + 4) * 10_000 // LINE_BAUD

    def expire(self, now_ms):
        if self._buf and ticks_diff(now_ms, self._first) > self._allowed_ms():
            partial = self._buf[:2] == MAGIC
            self._buf = bytearray()
            if partial:
                return [FrameError("frame timed out")]
        return []

    def _drop(self, n):
        # MicroPython's bytearray has no slice deletion.
        self._buf = self._buf[n:]
        self._first = self._now  # what is left begins a frame (at the latest) now

    def _parse(self, out):
        buf = self._buf
        while True:
            i = buf.find(MAGIC)
            if i < 0:
                # Keep a trailing "A": it may start the next magic.
                self._drop(len(buf) - 1 if buf and buf[-1] == MAGIC[0] else len(buf))
                return
            if i:
                self._drop(i)
                buf = self._buf
            if len(buf) < HEADER_SIZE:
                return
            n = int.from_bytes(buf[4:8], "big")
            reason = None
            if buf[2] != VERSION:
                reason = "unsupported version"
            elif buf[3] != 0:
                reason = "unsupported flags"
            elif n > MAX_PAYLOAD:
                reason = "payload too long"
            if reason:
                # Resynchronise on the next magic after this one.
                out.append(FrameError(reason))
                self._drop(len(MAGIC))
                buf = self._buf
                continue
            end = HEADER_SIZE + n
            if len(buf) < end + 4:
                return
            mv = memoryview(buf)
            if _crc(mv[:end]) != buf[end : end + 4]:
                out.append(FrameError("bad crc"))
            else:
                out.append(bytes(mv[HEADER_SIZE:end]))
            del mv  # release the view before the buffer is replaced
            self._drop(end + 4)
            buf = self._buf

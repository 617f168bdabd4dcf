"""The host's side of the wire protocol: frames and messages (docs/protocol.md).

A separate implementation from the firmware's, so that each side is tested
against the other and the host never runs device code.
"""

import binascii
import struct

import cbor2

MAGIC = b"AM"
VERSION = 1
HEADER_SIZE = 8
MAX_PAYLOAD = 8192
FRAME_TIMEOUT = 2.0  # seconds
LINE_BAUD = 115200  # the protocol's line rate: a frame's length buys it time at this rate
_HEADER = struct.Struct(">2sBBI")
_MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + 4


class FrameError(ValueError):
    pass


class ProtocolError(ValueError):
    pass


def encode(payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    frame = _HEADER.pack(MAGIC, VERSION, 0, len(payload)) + bytes(payload)
    return frame + struct.pack(">I", binascii.crc32(frame))


class FrameReader:
    """A frame must arrive whole within FRAME_TIMEOUT of its first byte, plus
    the time its length takes at LINE_BAUD; otherwise it is dropped (counted
    from the first byte: a damaged length must not swallow the frames that
    keep arriving after it)."""

    def __init__(self):
        self._buf = bytearray()
        self._first = 0.0  # when the frame at the buffer's start began to arrive
        self._now = 0.0

    def feed(self, data: bytes, now: float) -> list:
        out = self.expire(now)  # a frame past its time ends here too
        self._now = now
        if data and not self._buf:
            self._first = now
        view = memoryview(data)
        while view:
            # Take only what fits: the buffer never holds more than one frame.
            take = _MAX_FRAME - len(self._buf)
            self._buf += view[:take]
            view = view[take:]
            self._parse(out)
        return out

    def reset(self) -> None:
        """Forget a partial frame (its request is being sent again)."""
        self._buf.clear()

    def _allowed(self) -> float:
        n = _HEADER.unpack_from(self._buf)[3] if len(self._buf) >= HEADER_SIZE else 0
        return FRAME_TIMEOUT + (HEADER_SIZE + min(n, MAX_PAYLOAD) + 4) * 10 / LINE_BAUD

    def expire(self, now: float) -> list:
        if self._buf and now - self._first > self._allowed():
            partial = self._buf.startswith(MAGIC)
            self._buf.clear()
            if partial:
                return [FrameError("frame timed out")]
        return []

    def _parse(self, out: list) -> None:
        buf = self._buf
        while True:
            i = buf.find(MAGIC)
            if i < 0:
                # A trailing "A" may start the next magic.
                del buf[: len(buf) - 1 if buf.endswith(MAGIC[:1]) else len(buf)]
                self._first = self._now
                return
            if i:
                del buf[:i]
                self._first = self._now
            if len(buf) < HEADER_SIZE:
                return
            _, version, flags, n = _HEADER.unpack_from(buf)
            if version != VERSION or flags or n > MAX_PAYLOAD:
                reason = ("unsupported version" if version != VERSION
                          else "unsupported flags" if flags else "payload too long")
                out.append(FrameError(reason))
                del buf[: len(MAGIC)]  # resynchronise after this magic
                self._first = self._now
                continue
            end = HEADER_SIZE + n
            if len(buf) < end + 4:
                return
            if binascii.crc32(buf[:end]) != struct.unpack_from(">I", buf, end)[0]:
                out.append(FrameError("bad crc"))
            else:
                out.append(bytes(buf[HEADER_SIZE:end]))
            del buf[: end + 4]
            self._first = self._now  # what is left begins a frame (at the latest) now


def encode_request(id: int, method: str, params: dict) -> bytes:
    if not 1 <= id < 2**32:
        raise ValueError(f"request id {id} out of range")
    return encode(cbor2.dumps({"id": id, "method": method, "params": params}))


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def decode_message(payload: bytes) -> dict:
    """A device answer, checked for shape: {"id", "result"} or {"id", "error"}."""
    try:
        msg = cbor2.loads(payload)
    except Exception as e:  # cbor2 raises several types on malformed input
        raise ProtocolError(f"payload is not CBOR: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message is not a map")
    if "id" not in msg or not (msg["id"] is None or _is_int(msg["id"])):
        raise ProtocolError("message id missing or not an int or null")
    if ("result" in msg) == ("error" in msg):
        raise ProtocolError("message needs exactly one of result and error")
    if "error" in msg:
        err = msg["error"]
        if not (isinstance(err, dict) and _is_int(err.get("code")) and isinstance(err.get("message"), str)):
            raise ProtocolError("error is not a map with int code and text message")
    return msg

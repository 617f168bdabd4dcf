"""Frames over one board channel (serial line or DebugLink)."""

import gc
import hashlib

from . import framing, rpc
from .errors import BadFrame, InternalError


class Link:
    def __init__(self, channel, board, max_payload=framing.MAX_PAYLOAD):
        self.channel = channel
        self.board = board
        self.max_payload = max_payload
        self.reader = framing.FrameReader(max_payload)
        self.queue = []
        self._last = None  # (request id, SHA-256 of the request, answer) of the last request served
        self.heard = board.ticks_ms()  # when a byte last arrived: is the host still there?

    def next(self):
        """The next request payload, or None. Requests are taken one at a
        time, so that those arriving in the same read as a long request are
        served (or turned away BUSY) while it runs, in order. The queue holds
        at most what one read of the channel brings (a bounded buffer); the
        rest waits in the line."""
        if not self.queue:
            self.queue = self._receive()
        return self.queue.pop(0) if self.queue else None

    def _receive(self):
        """Payloads that arrived since the last call. Broken frames are
        answered here with BAD_FRAME (id null) and not passed on; a frame that
        stopped arriving is dropped silently (its sender has gone)."""
        data = self.channel.read_available()
        now = self.board.ticks_ms()
        if data:
            self.heard = now
        try:
            items = self.reader.feed(data, now) if data else self.reader.expire(now)
        except MemoryError:
            # The frame in progress is lost: say so at once rather than
            # leaving its sender to time out.
            self.reader = None
            gc.collect()
            self.reader = framing.FrameReader(self.max_payload)
            self.send(rpc.error(None, InternalError("out of memory while receiving a frame")))
            return []
        out = []
        for item in items:
            if isinstance(item, framing.FrameError):
                if str(item) == "frame timed out":
                    continue
                self.send(rpc.error(None, BadFrame("bad frame: %s" % item)))
            else:
                out.append(item)
        return out

    def silent_ms(self):
        """Milliseconds since the last byte arrived."""
        return framing.ticks_diff(self.board.ticks_ms(), self.heard)

    def replay(self, rid, request):
        """The answer already given to this very request (same id, same
        bytes: the host sent it again), or None."""
        last = self._last
        if last is not None and last[0] == rid and last[1] == hashlib.sha256(request).digest():
            return last[2]
        return None

    def remember(self, rid, request, answer):
        self._last = (rid, hashlib.sha256(request).digest(), answer)

    def send(self, payload):
        try:
            head, crc = framing.parts(payload)
        except ValueError:
            # An answer too large for one frame is a bug; say so briefly.
            payload = rpc.error(None, InternalError("answer too large for a frame"))
            head, crc = framing.parts(payload)
        for piece in (head, payload, crc):
            self.channel.write(piece)

"""Frames over one board channel (serial line or DebugLink)."""

from . import framing, rpc
from .errors import BadFrame


class Link:
    def __init__(self, channel, board):
        self.channel = channel
        self.board = board
        self.reader = framing.FrameReader()

    def receive(self):
        """Payloads that arrived since the last call. Broken frames are
        answered here with BAD_FRAME (id null) and not passed on; a frame that
        stopped arriving is dropped silently (its sender has gone)."""
        data = self.channel.read_available()
        now = self.board.ticks_ms()
        items = self.reader.feed(data, now) if data else self.reader.expire(now)
        out = []
        for item in items:
            if isinstance(item, framing.FrameError):
                if str(item) == "frame timed out":
                    continue
                self.send(rpc.error(None, BadFrame("bad frame: %s" % item)))
            else:
                out.append(item)
        return out

    def send(self, payload):
        self.channel.write(framing.encode(payload))

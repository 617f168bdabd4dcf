"""The serial line to a device: frames, request ids, timeouts.

Opened with RTS and DTR held low and never toggled (they reset ESP32 boards).
Every failure of the line becomes a TransportError with one clear sentence.
"""

import errno
import random
import time

import serial

from . import framing
from .errors import DeviceBusyError, DeviceError, ProtocolError, TransportError

BAD_FRAME = 1  # docs/protocol.md, "Error codes"

BAUDRATE = 115200
RETRIES = 3  # a request whose answer does not come, or comes damaged, is sent again


class Transport:
    def __init__(self, port: str, timeout: float = 10.0):
        self.port = port
        self.timeout = timeout
        ser = serial.Serial()
        ser.port = port
        ser.baudrate = BAUDRATE
        ser.dtr = False  # set before open(): pyserial applies them on open
        ser.rts = False
        ser.timeout = 0.05
        ser.write_timeout = timeout
        ser.exclusive = True
        try:
            ser.open()
        except (serial.SerialException, OSError) as e:
            if e.errno in (errno.EAGAIN, errno.EBUSY):  # the port's lock is held
                raise DeviceBusyError(f"the device on {port} is busy: another program is using it (an amanat "
                                      "or amanat-hwi command waiting for the officer?); answer or reject its "
                                      "prompt on the device, or stop that command") from None
            raise TransportError(f"cannot open {port}: {e}") from None
        self.ser = ser
        self.reader = framing.FrameReader()
        self.next_id = random.randrange(1, 1 << 30)
        self.stray: list[dict] = []
        self.last_rx = time.monotonic()  # when the device was last heard
        self.sent: dict[int, bytes] = {}  # the last requests' frames, to send again
        self.bytes_out = 0  # bytes written to the line, resends included

    def close(self):
        try:
            self.ser.close()
        except (serial.SerialException, OSError):
            pass

    def send(self, method: str, params: dict | None = None, keep: bool = True) -> int:
        """Send a request; its id. With `keep`, its frame is kept until its
        answer is taken with wait(), to be sent again if the line loses it."""
        rid = self.next_id
        self.next_id = self.next_id % ((1 << 32) - 1) + 1
        try:
            frame = framing.encode_request(rid, method, params or {})
        except ValueError as e:
            raise ProtocolError(f"request {method} is too large to send: {e}") from None
        if keep:
            self.sent[rid] = frame
            while len(self.sent) > 16:  # requests whose answers nobody waited for
                del self.sent[next(iter(self.sent))]
        self._write(frame)
        return rid

    def resend(self, rid: int) -> None:
        """Send request `rid` again, byte for byte: the device answers a
        request it already served with the answer it gave. A partial frame
        read so far is dropped: the answer comes again, whole."""
        self.reader.reset()
        self._write(self.sent[rid])

    def _write(self, frame: bytes) -> None:
        try:
            self.ser.write(frame)
            self.ser.flush()
            self.bytes_out += len(frame)
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"serial line to {self.port} broke: {e}") from None

    def receive(self) -> list[dict]:
        """Messages that arrived within the read timeout (maybe none)."""
        try:
            data = self.ser.read(max(1, self.ser.in_waiting))
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"serial line to {self.port} broke: {e}") from None
        now = time.monotonic()
        if data:
            self.last_rx = now
        items = self.reader.feed(data, now) if data else self.reader.expire(now)
        out = []
        for item in items:
            if isinstance(item, framing.FrameError):
                continue  # a damaged frame from the device: its request will time out
            try:
                out.append(framing.decode_message(item))
            except framing.ProtocolError as e:
                raise ProtocolError(f"malformed answer from the device: {e}") from None
        return out

    def wait(self, rid: int, timeout: float | None, on_idle=None, strict=True):
        """The result for request `rid`, or its DeviceError. `on_idle` is
        called between reads (to ping, show progress); it may raise. With
        strict=False a BAD_FRAME without id (line noise, maybe a lost ping)
        does not end the wait: the caller checks liveness itself."""
        try:
            return self._wait(rid, timeout, on_idle, strict)
        finally:
            self.sent.pop(rid, None)

    def _wait(self, rid, timeout, on_idle, strict):
        deadline = None if timeout is None else time.monotonic() + timeout
        tries = 0
        while True:
            for msg in self.receive():
                if msg.get("id") == rid:
                    if "error" in msg:
                        err = msg["error"]
                        raise DeviceError(err["code"], err["message"])
                    return msg["result"]
                if msg.get("id") is None and "error" in msg and strict:
                    # a frame the device could not read: maybe ours, damaged on the line
                    err = msg["error"]
                    if err.get("code") != BAD_FRAME or tries >= RETRIES:
                        raise DeviceError(err["code"], err["message"])
                    tries += 1
                    self.resend(rid)
                    continue
                self.stray.append(msg)
                del self.stray[:-16]
            if deadline is not None and time.monotonic() > deadline:
                if tries >= RETRIES:
                    raise TransportError(f"no answer from the device on {self.port} within {timeout:g} s")
                tries += 1  # the request or its answer was lost on the line
                self.resend(rid)
                deadline = time.monotonic() + timeout
            if on_idle is not None:
                on_idle()

    def call(self, method: str, params: dict | None = None, timeout: float | None = -1, on_idle=None):
        rid = self.send(method, params)
        return self.wait(rid, self.timeout if timeout == -1 else timeout, on_idle)

    def take_stray(self, rid: int):
        for i, msg in enumerate(self.stray):
            if msg.get("id") == rid:
                return self.stray.pop(i)
        return None

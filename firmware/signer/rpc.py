"""Request and answer messages (docs/protocol.md, "Messages").

{"id", "method", "params"} in, {"id", "result"} or {"id", "error"} out, as
CBOR. Parsing checks every field's type so that handlers can trust them.
"""

from . import cbor
from .errors import BadParams, BadRequest, DeviceError

MAX_ID = 1 << 32


def parse_request(payload):
    """(id, method, params) or BadRequest; the id is kept on the error when
    it could be read, so that the host can match the answer."""
    try:
        msg = cbor.loads(payload)
    except cbor.CBORError as e:
        raise BadRequest("payload is not valid CBOR: %s" % e)
    if not isinstance(msg, dict):
        raise BadRequest("request is not a map")
    rid = msg.get("id")
    if not isinstance(rid, int) or isinstance(rid, bool) or not 1 <= rid < MAX_ID:
        raise BadRequest("request id must be an integer in 1..2^32-1")
    method = msg.get("method")
    if not isinstance(method, str):
        e = BadRequest("method must be text")
        e.request_id = rid
        raise e
    params = msg.get("params", {})
    if not isinstance(params, dict):
        e = BadRequest("params must be a map")
        e.request_id = rid
        raise e
    for k in msg:
        if k not in ("id", "method", "params"):
            e = BadRequest("unexpected field %r in request" % (clip(k),))
            e.request_id = rid
            raise e
    return rid, method, params


def result(rid, value):
    return cbor.dumps({"id": rid, "result": value})


def error(rid, err):
    if not isinstance(err, DeviceError):
        err = DeviceError("internal error: %s" % err.__class__.__name__)
    return cbor.dumps({"id": rid, "error": {"code": err.code, "message": err.message}})


class Params:
    """Typed access to a request's params; wrong or missing ones are BadParams."""

    def __init__(self, params, allowed):
        for k in params:
            if k not in allowed:
                raise BadParams("unknown parameter %r" % (clip(k),))
        self.p = params

    def _get(self, name, kind, default):
        if name not in self.p:
            if default is _REQUIRED:
                raise BadParams("missing parameter %r" % name)
            return default
        v = self.p[name]
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise BadParams("parameter %r must be %s" % (name, _KIND_NAMES[kind]))
        return v

    def uint(self, name, default=None, limit=None):
        v = self._get(name, int, _REQUIRED if default is None else default)
        if v < 0 or (limit is not None and v > limit):
            raise BadParams("parameter %r out of range" % name)
        return v

    def text(self, name, default=None, limit=1024):
        v = self._get(name, str, _REQUIRED if default is None else default)
        if len(v) > limit:
            raise BadParams("parameter %r is too long" % name)
        return v

    def flag(self, name, default=False):
        v = self.p.get(name, default)
        if v is not True and v is not False:
            raise BadParams("parameter %r must be true or false" % name)
        return v

    def data(self, name, size=None, limit=None):
        v = self._get(name, bytes, _REQUIRED)
        if size is not None and len(v) != size:
            raise BadParams("parameter %r must be %d bytes" % (name, size))
        if limit is not None and len(v) > limit:
            raise BadParams("parameter %r is longer than %d bytes" % (name, limit))
        return v


def clip(value, n=40):
    """What a message may echo of the sender's input: short, so that an
    error answer always fits in a frame."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= n else text[:n] + "..."


_REQUIRED = object()
_KIND_NAMES = {int: "an integer", str: "text", bytes: "a byte string"}

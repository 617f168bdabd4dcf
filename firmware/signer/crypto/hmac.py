"""hmac (RFC 2104) for the firmware: replaces `hmac` in sys.modules.

Hash constructors come from the sibling hashlib_ext, never from `hashlib`,
which is hashlib_ext itself once install() has run.
"""

from . import hashlib_ext as _hl


def _resolve(digestmod):
    """(constructor, digest_size, block_size, name) for a digestmod."""
    if digestmod is None:
        raise TypeError("Missing required parameter 'digestmod'.")
    if isinstance(digestmod, str):
        ctor, size, bsize = _hl.algo(digestmod)
        return ctor, size, bsize, digestmod.lower()
    ctor = getattr(digestmod, "new", digestmod)  # a module such as hashlib_ext.sha512
    for name, info in _hl._ALGOS.items():
        if info[0] is ctor:
            return ctor, info[1], info[2], name
    # A constructor from elsewhere (e.g. CPython's hashlib): ask an instance.
    h = ctor()
    return ctor, h.digest_size, getattr(h, "block_size", 64), getattr(h, "name", "?")


class HMAC:
    def __init__(self, key, msg=None, digestmod=None):
        if isinstance(key, str):
            raise TypeError("key: expected bytes or bytearray, but got 'str'")
        ctor, self.digest_size, self.block_size, name = _resolve(digestmod)
        self.name = "hmac-" + name
        self._ctor = ctor
        ipad, opad = _hl.key_pads(key, self.block_size, ctor)
        self._inner = ctor(ipad)
        _hl.wipe(ipad)
        self._done = None
        if hasattr(self._inner, "copy"):
            self._outer = ctor(opad)
            _hl.wipe(opad)
            self._opad = None
        else:
            # MicroPython's built-in hashes cannot be copied: keep the pad
            # and hash it at digest() time.
            self._outer = None
            self._opad = opad
        if msg is not None:
            self.update(msg)

    def update(self, msg):
        if self._done is not None:
            raise ValueError("hash is final")
        self._inner.update(msg)

    def copy(self):
        if self._outer is None:
            raise NotImplementedError("copy() needs a hash with copy()")
        c = HMAC.__new__(HMAC)
        c.digest_size = self.digest_size
        c.block_size = self.block_size
        c.name = self.name
        c._ctor = self._ctor
        c._inner = self._inner.copy()
        c._outer = self._outer.copy()
        c._opad = None
        c._done = self._done
        return c

    def digest(self):
        if self._done is not None:
            return self._done
        if self._outer is not None:
            # Hashes with copy() also digest without ending, so the object
            # stays usable (as in CPython).
            outer = self._outer.copy()
            outer.update(self._inner.digest())
            return outer.digest()
        # A built-in hash ends at digest(): remember the result, drop the pad.
        outer = self._ctor(self._opad)
        outer.update(self._inner.digest())
        self._done = outer.digest()
        _hl.wipe(self._opad)
        return self._done

    def hexdigest(self):
        from binascii import hexlify

        return hexlify(self.digest()).decode()


def new(key, msg=None, digestmod=None):
    return HMAC(key, msg, digestmod)


def digest(key, msg, digest):
    return HMAC(key, msg, digest).digest()


def compare_digest(a, b):
    """a == b in time that depends only on the length, for equal lengths."""
    if isinstance(a, str) != isinstance(b, str):
        raise TypeError("unsupported operand types")
    if isinstance(a, str):
        a = a.encode()
        b = b.encode()
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0

"""hashlib for the firmware: replaces `hashlib` in sys.modules (see install()).

Keeps the built-in sha256/sha1/md5 (C, fast) and adds sha512 and ripemd160
(viper), new() and pbkdf2_hmac(). The built-in module is captured here, at
import time, before install() swaps this module in. On CPython the real
hashlib is wrapped the same way, for the unit tests.
"""

import micropython
import hashlib as _builtin

from .ripemd160 import ripemd160
from .sha512 import sha512
from . import sha512 as _s5

sha256 = _builtin.sha256
sha1 = getattr(_builtin, "sha1", None)
md5 = getattr(_builtin, "md5", None)

# name -> (constructor, digest_size, block_size); the built-in hash objects
# of MicroPython carry no such attributes.
_ALGOS = {"sha256": (sha256, 32, 64), "sha512": (sha512, 64, 128), "ripemd160": (ripemd160, 20, 64)}
if sha1:
    _ALGOS["sha1"] = (sha1, 20, 64)
if md5:
    _ALGOS["md5"] = (md5, 16, 64)

algorithms_guaranteed = algorithms_available = tuple(sorted(_ALGOS))


def algo(name):
    """(constructor, digest_size, block_size) for a hash name."""
    info = _ALGOS.get(name.lower()) if isinstance(name, str) else None
    if info is None:
        raise ValueError("unsupported hash type " + str(name))
    return info


def new(name, data=b""):
    h = algo(name)[0]()
    if data:
        h.update(data)
    return h


@micropython.viper
def _xor_const(dst: ptr8, src: ptr8, n: int, c: int):
    for i in range(n):
        dst[i] = src[i] ^ c


@micropython.viper
def _xor_bytes(dst: ptr8, src: ptr8, n: int):
    for i in range(n):
        dst[i] = dst[i] ^ src[i]


def wipe(buf):
    """Zero a bytearray holding secret material (x ^ x == 0, in place)."""
    _xor_bytes(buf, buf, len(buf))


def key_pads(key, block_size, ctor):
    """HMAC's (key ^ ipad, key ^ opad) as bytearrays; the caller wipes them."""
    if len(key) > block_size:
        key = ctor(key).digest()
    k = bytearray(block_size)
    k[0 : len(key)] = key
    ipad = bytearray(block_size)
    opad = bytearray(block_size)
    _xor_const(ipad, k, block_size, 0x36)
    _xor_const(opad, k, block_size, 0x5C)
    wipe(k)
    return ipad, opad


def _check_bytes(x, what):
    if isinstance(x, str):
        raise TypeError(what + " must be bytes-like, not str")


def pbkdf2_hmac(hash_name, password, salt, iterations, dklen=None):
    """PBKDF2 (RFC 8018) with HMAC; sha512 runs on precomputed pad states."""
    ctor, size, bsize = algo(hash_name)
    _check_bytes(password, "password")
    _check_bytes(salt, "salt")
    if iterations < 1:
        raise ValueError("iteration value must be greater than 0.")
    if dklen is None:
        dklen = size
    if dklen < 1:
        raise ValueError("key length must be greater than 0.")
    if ctor is sha512:
        return _pbkdf2_sha512(password, salt, iterations, dklen)
    return _pbkdf2_generic(ctor, size, bsize, password, salt, iterations, dklen)


def _pbkdf2_generic(ctor, size, bsize, password, salt, iterations, dklen):
    # MicroPython's built-in hash objects have no copy(), so every HMAC hashes
    # the pads again. Not a hot path in the firmware.
    ipad, opad = key_pads(password, bsize, ctor)

    def prf(msg):
        h = ctor(ipad)
        h.update(msg)
        inner = h.digest()
        h = ctor(opad)
        h.update(inner)
        return h.digest()

    out = bytearray()
    i = 1
    t = bytearray(size)
    try:
        while len(out) < dklen:
            u = prf(salt + i.to_bytes(4, "big"))
            t[:] = u
            for _ in range(iterations - 1):
                u = prf(u)
                _xor_bytes(t, u, size)
            out += t
            i += 1
        return bytes(out[:dklen])
    finally:
        wipe(ipad)
        wipe(opad)
        wipe(t)
        wipe(out)


# The last 64 bytes of the one block hashed after a 128-byte pad block: a
# 64-byte message, then SHA-512 padding for a total of 192 bytes.
_TAIL = b"\x80" + bytes(47) + (192 * 8).to_bytes(16, "big")


def _pbkdf2_sha512(password, salt, iterations, dklen):
    ipad, opad = key_pads(password, 128, sha512)
    inner = sha512(ipad)
    outer = sha512(opad)
    wipe(ipad)
    wipe(opad)
    ist = inner._h  # state after the pad block: the HMAC key in effect
    ost = outer._h
    kw = _s5.KW
    w = _s5.W_VIEW  # W[0..15] of the next block; compress() writes U there
    compress = _s5.compress
    xor_words = _s5.xor_words
    t = bytearray(64)
    block = bytearray(128)
    out = bytearray()
    h = inner.copy()
    h2 = outer.copy()
    i = 1
    try:
        while len(out) < dklen:
            h = inner.copy()
            h.update(salt)
            h.update(i.to_bytes(4, "big"))
            h2 = outer.copy()
            h2.update(h.digest())
            block[0:64] = h2.digest()
            block[64:128] = _TAIL
            _s5.load_be(kw, _s5.W_OFF, block, 0, 32)
            t[:] = w[0:64]
            # U_j = HMAC(U_{j-1}): two compressions straight on the word
            # buffer, no allocation; T ^= U_j.
            for _ in range(iterations - 1):
                compress(ist, w, kw)
                compress(ost, w, kw)
                xor_words(t, w, 16)
            _s5.store_be(block, t, 16)
            out += block[0:64]
            i += 1
        return bytes(out[:dklen])
    finally:
        for b in (ist, ost, t, block, out, h._h, h._buf, h2._h, h2._buf):
            wipe(b)
        # The message schedule and working variables derive from the key too.
        _s5.zero_words(memoryview(kw)[_s5.W_OFF * 4 :], 336 - _s5.W_OFF)

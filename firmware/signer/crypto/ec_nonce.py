"""Deterministic nonces and tagged hashes for secp256k1 signing.

Only the built-in hashlib.sha256 is used: this module is imported before the
firmware swaps its own hashlib into sys.modules, and needs nothing more.
HMAC-SHA256 is done here because no `hmac` module may be relied on.
"""

import hashlib

from .hashlib_ext import wipe

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_ZERO32 = bytes(32)


def hmac_sha256(key, *parts):
    """HMAC-SHA256 with a key of at most 64 bytes. The padded keys live in a
    bytearray that is wiped afterwards."""
    pad = bytearray(64)
    for i in range(len(key)):
        pad[i] = key[i] ^ 0x36
    for i in range(len(key), 64):
        pad[i] = 0x36
    h = hashlib.sha256(pad)
    for part in parts:
        h.update(part)
    inner = h.digest()
    for i in range(64):
        pad[i] ^= 0x36 ^ 0x5C
    h = hashlib.sha256(pad)
    h.update(inner)
    wipe(pad)
    return h.digest()


class Rfc6979:
    """HMAC-DRBG of RFC 6979 section 3.2, as libsecp256k1's
    secp256k1_rfc6979_hmac_sha256 (the retry step only before outputs that
    follow the first)."""

    def __init__(self, seed):
        v = b"\x01" * 32
        k = hmac_sha256(_ZERO32, v, b"\x00", seed)
        v = hmac_sha256(k, v)
        k = hmac_sha256(k, v, b"\x01", seed)
        self._v = hmac_sha256(k, v)
        self._k = k
        self._retry = False

    def generate(self):
        if self._retry:
            self._k = hmac_sha256(self._k, self._v, b"\x00")
            self._v = hmac_sha256(self._k, self._v)
        self._v = hmac_sha256(self._k, self._v)
        self._retry = True
        return self._v

    def clear(self):
        self._k = self._v = None


def rfc6979_seed(msg32, key32, data=None, algo16=None):
    """key || (msg mod N) || [data32] || [algo16], as libsecp256k1's
    nonce_function_rfc6979 builds it, in a bytearray the caller wipes."""
    m = int.from_bytes(msg32, "big")
    if m >= N:
        m -= N
    seed = bytearray(key32)
    seed.extend(m.to_bytes(32, "big"))
    if data is not None:
        seed.extend(data)
    if algo16 is not None:
        seed.extend(algo16)
    return seed


def nonce_function_rfc6979(msg32, key32, algo16=None, data=None, attempt=0):
    """libsecp256k1's default ECDSA nonce function, `attempt` counting from 0."""
    seed = rfc6979_seed(msg32, key32, data, algo16)
    rng = Rfc6979(seed)
    wipe(seed)
    for _ in range(attempt + 1):
        out = rng.generate()
    rng.clear()
    return out


def _tag(name):
    t = hashlib.sha256(name).digest()
    return t + t


TAG_AUX = _tag(b"BIP0340/aux")
TAG_NONCE = _tag(b"BIP0340/nonce")
TAG_CHALLENGE = _tag(b"BIP0340/challenge")


def tagged_hash(tag, *parts):
    h = hashlib.sha256(tag)
    for part in parts:
        h.update(part)
    return h.digest()


def nonce_function_bip340(msg32, key32, xonly32, aux32=None):
    """BIP340 nonce as the libsecp256k1 this API follows computes it: the
    key is masked with hash(aux) when aux is given, and used unmasked when it
    is None (not the same as 32 zero bytes)."""
    if aux32 is None:
        return tagged_hash(TAG_NONCE, key32, xonly32, msg32)
    mask = tagged_hash(TAG_AUX, aux32)
    masked = bytearray(32)
    for i in range(32):
        masked[i] = mask[i] ^ key32[i]
    out = tagged_hash(TAG_NONCE, masked, xonly32, msg32)
    wipe(masked)
    return out

"""Pure-MicroPython stand-in for the `secp256k1` C module that embit imports.

Same functions, argument order, return values, opaque layouts and error
types/messages as embit's ctypes binding to libsecp256k1
(embit/util/ctypes_secp256k1.py), which the tests compare it with:

- a public key is 64 bytes: x || y, each 32 bytes little-endian (libsecp's
  secp256k1_pubkey on a 64-bit little-endian build); an x-only public key has
  the same layout with an even y; a keypair is secret (32, big-endian) ||
  public key (64);
- an ECDSA signature is r || s, each 32 bytes little-endian; a recoverable
  one appends the recovery id byte.

Differences, all on inputs where libsecp would abort the process or read out
of bounds instead: malformed opaque objects (points off the curve, wrong
lengths in ec_pubkey_combine, recovery ids > 3, zero keypair secrets) raise
ValueError (or make a verify return False), and extra_data must be None or
32 bytes. One more, on purpose: the ECDSA nonce is seeded with msg mod N, as
RFC 6979 and libsecp256k1 >= 0.4 do; the older library behind embit's
prebuilt binding used the raw message, so for the (2**-128 of) messages
>= N the signatures differ from it (both are valid).

The "tweak in place" functions (ec_privkey_tweak_add/_mul,
ec_pubkey_tweak_add/_mul) write the result into their first argument when it
is a bytearray (or writable memoryview), and also return it, so that callers
passing immutable bytes still get the result (the C module mutates even
bytes). On failure a writable first argument is zeroed, as libsecp does.

`context` arguments are accepted and ignored: there is no precomputation
context and nothing to randomize.
"""

import hashlib

from . import ec_der
from .ec_math import N, P, inv_blind, inv_vartime, jadd, jadd_affine, lift_x, mul_g, mul_point, on_curve, to_affine
from .ec_nonce import (
    TAG_CHALLENGE,
    Rfc6979,
    nonce_function_bip340,
    nonce_function_rfc6979,
    rfc6979_seed,
    tagged_hash,
    wipe,
)

# Flags to pass to context_create.
CONTEXT_VERIFY = 0b0100000001
CONTEXT_SIGN = 0b1000000001
CONTEXT_NONE = 0b0000000001

# Flags to pass to ec_pubkey_serialize
EC_COMPRESSED = 0b0100000010
EC_UNCOMPRESSED = 0b0000000010

N_HALF = N >> 1
# BIP340 algo16 handed to custom Schnorr nonce functions, as libsecp does.
BIP340_ALGO16 = b"BIP0340/nonce\x00\x00\x00"

nonce_function_default = nonce_function_rfc6979


# ---------------------------------------------------------------- helpers


def _scalar(b):
    """Secret key / nonzero tweak as int, or 0 when not in [1, N-1]."""
    v = int.from_bytes(b, "big")
    return v if v < N else 0


def _load_pub(pub):
    """(x, y) from an opaque 64-byte public key, or None if not a valid point."""
    x = int.from_bytes(pub[:32], "little")
    y = int.from_bytes(pub[32:64], "little")
    if not on_curve(x, y):
        return None
    return x, y


def _save_pub(pt):
    return pt[0].to_bytes(32, "little") + pt[1].to_bytes(32, "little")


def _writable(buf):
    return isinstance(buf, bytearray) or isinstance(buf, memoryview)


def _store(buf, value):
    if _writable(buf):
        buf[0 : len(value)] = value
    return value


def _fail(buf, msg):
    # libsecp zeroes the object it failed to tweak in place.
    if _writable(buf):
        for i in range(len(buf)):
            buf[i] = 0
    raise ValueError(msg)


def _sig(r, s):
    return r.to_bytes(32, "little") + s.to_bytes(32, "little")


# ---------------------------------------------------------------- context


def context_create(flags=CONTEXT_SIGN | CONTEXT_VERIFY):
    """Returns an opaque token; every `context` argument ignores it."""
    return flags


def context_randomize(seed, context=None):
    if len(seed) != 32:
        raise ValueError("Seed should be 32 bytes long")


# ---------------------------------------------------------------- keys


def ec_seckey_verify(secret, context=None):
    if len(secret) != 32:
        raise ValueError("Secret should be 32 bytes long")
    return _scalar(secret) != 0


def ec_pubkey_create(secret, context=None):
    if len(secret) != 32:
        raise ValueError("Private key should be 32 bytes long")
    d = _scalar(secret)
    if not d:
        raise ValueError("Invalid private key")
    X, Y, Z = mul_g(d)
    return _save_pub(to_affine(X, Y, Z, True))


def ec_pubkey_parse(sec, context=None):
    if len(sec) != 33 and len(sec) != 65:
        raise ValueError("Serialized pubkey should be 33 or 65 bytes long")
    if len(sec) == 33:
        if sec[0] != 0x02 and sec[0] != 0x03:
            raise ValueError("Compressed pubkey should start with 0x02 or 0x03")
        pt = lift_x(int.from_bytes(sec[1:33], "big"), sec[0] & 1)
    else:
        if sec[0] != 0x04:
            raise ValueError("Uncompressed pubkey should start with 0x04")
        pt = (int.from_bytes(sec[1:33], "big"), int.from_bytes(sec[33:65], "big"))
        if not on_curve(pt[0], pt[1]):
            pt = None
    if pt is None:
        raise ValueError("Failed parsing public key")
    return _save_pub(pt)


def ec_pubkey_serialize(pubkey, flag=EC_COMPRESSED, context=None):
    if len(pubkey) != 64:
        raise ValueError("Pubkey should be 64 bytes long")
    if flag not in [EC_COMPRESSED, EC_UNCOMPRESSED]:
        raise ValueError("Invalid flag")
    pt = _load_pub(pubkey)
    if pt is None:
        raise ValueError("Failed to serialize pubkey")
    x = pt[0].to_bytes(32, "big")
    if flag == EC_COMPRESSED:
        return bytes((2 + (pt[1] & 1),)) + x
    return b"\x04" + x + pt[1].to_bytes(32, "big")


def ec_privkey_negate(secret, context=None):
    """Returns N - secret; 32 zero bytes for an invalid secret (as libsecp)."""
    if len(secret) != 32:
        raise ValueError("Secret should be 32 bytes long")
    d = _scalar(secret)
    return ((N - d) % N).to_bytes(32, "big")


def ec_pubkey_negate(pubkey, context=None):
    if len(pubkey) != 64:
        raise ValueError("Pubkey should be a 64-byte structure")
    pt = _load_pub(pubkey)
    if pt is None:
        raise ValueError("Failed to negate pubkey")
    return _save_pub((pt[0], (P - pt[1]) % P))


def _priv_add(secret, tweak):
    d = _scalar(secret)
    t = int.from_bytes(tweak, "big")
    if not d or t >= N:
        return 0
    return (d + t) % N


def _priv_mul(secret, tweak):
    d = _scalar(secret)
    t = _scalar(tweak)
    if not d or not t:
        return 0
    return d * t % N


def _pub_add(pub, tweak):
    pt = _load_pub(pub)
    t = int.from_bytes(tweak, "big")
    if pt is None or t >= N:
        return None
    X, Y, Z = mul_g(t)
    X, Y, Z = jadd_affine(X, Y, Z, pt[0], pt[1])
    return to_affine(X, Y, Z, True)


def _pub_mul(pub, tweak):
    pt = _load_pub(pub)
    t = _scalar(tweak)
    if pt is None or not t:
        return None
    X, Y, Z = mul_point(pt[0], pt[1], t)
    return to_affine(X, Y, Z, True)


def ec_privkey_tweak_add(secret, tweak, context=None):
    """secret + tweak, in place for a bytearray; also returned."""
    if len(secret) != 32 or len(tweak) != 32:
        raise ValueError("Secret and tweak should both be 32 bytes long")
    v = _priv_add(secret, tweak)
    if not v:
        _fail(secret, "Failed to tweak the secret")
    return _store(secret, v.to_bytes(32, "big"))


def ec_privkey_add(secret, tweak, context=None):
    if len(secret) != 32 or len(tweak) != 32:
        raise ValueError("Secret and tweak should both be 32 bytes long")
    v = _priv_add(secret, tweak)
    if not v:
        raise ValueError("Failed to tweak the secret")
    return v.to_bytes(32, "big")


def ec_privkey_tweak_mul(secret, tweak, context=None):
    """secret * tweak, in place for a bytearray; also returned."""
    if len(secret) != 32 or len(tweak) != 32:
        raise ValueError("Secret and tweak should both be 32 bytes long")
    v = _priv_mul(secret, tweak)
    if not v:
        _fail(secret, "Failed to tweak the secret")
    return _store(secret, v.to_bytes(32, "big"))


def ec_pubkey_tweak_add(pub, tweak, context=None):
    """pub + tweak * G, in place for a bytearray; also returned."""
    if len(pub) != 64:
        raise ValueError("Public key should be 64 bytes long")
    if len(tweak) != 32:
        raise ValueError("Tweak should be 32 bytes long")
    pt = _pub_add(pub, tweak)
    if pt is None:
        _fail(pub, "Failed to tweak the public key")
    return _store(pub, _save_pub(pt))


def ec_pubkey_add(pub, tweak, context=None):
    """pub + tweak * G as a new public key."""
    if len(pub) != 64:
        raise ValueError("Public key should be 64 bytes long")
    if len(tweak) != 32:
        raise ValueError("Tweak should be 32 bytes long")
    pt = _pub_add(pub, tweak)
    if pt is None:
        raise ValueError("Failed to tweak the public key")
    return _save_pub(pt)


def ec_pubkey_tweak_mul(pub, tweak, context=None):
    """tweak * pub, in place for a bytearray; also returned."""
    if len(pub) != 64:
        raise ValueError("Public key should be 64 bytes long")
    if len(tweak) != 32:
        raise ValueError("Tweak should be 32 bytes long")
    pt = _pub_mul(pub, tweak)
    if pt is None:
        _fail(pub, "Failed to tweak the public key")
    return _store(pub, _save_pub(pt))


def ec_pubkey_combine(*args, context=None):
    X, Y, Z = 0, 1, 0
    for pub in args:
        pt = _load_pub(pub) if len(pub) == 64 else None
        if pt is None:
            raise ValueError("Failed to combine pubkeys")
        X, Y, Z = jadd_affine(X, Y, Z, pt[0], pt[1])
    pt = to_affine(X, Y, Z)
    if pt is None:
        raise ValueError("Failed to combine pubkeys")
    return _save_pub(pt)


# ---------------------------------------------------------------- ECDSA


def ecdsa_signature_parse_compact(compact_sig, context=None):
    if len(compact_sig) != 64:
        raise ValueError("Compact signature should be 64 bytes long")
    r = int.from_bytes(compact_sig[:32], "big")
    s = int.from_bytes(compact_sig[32:], "big")
    if r >= N or s >= N:
        raise ValueError("Failed parsing compact signature")
    return _sig(r, s)


def ecdsa_signature_parse_der(der, context=None):
    rs = ec_der.parse(der)
    if rs is None:
        # (sic) the ctypes binding's message
        raise ValueError("Failed parsing compact signature")
    return _sig(rs[0], rs[1])


def ecdsa_signature_serialize_der(sig, context=None):
    if len(sig) != 64:
        raise ValueError("Signature should be 64 bytes long")
    return ec_der.serialize(int.from_bytes(sig[:32], "little"), int.from_bytes(sig[32:], "little"))


def ecdsa_signature_serialize_compact(sig, context=None):
    if len(sig) != 64:
        raise ValueError("Signature should be 64 bytes long")
    r = int.from_bytes(sig[:32], "little")
    s = int.from_bytes(sig[32:], "little")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def ecdsa_signature_normalize(sig, context=None):
    """The low-S form of sig (a new 64-byte signature)."""
    if len(sig) != 64:
        raise ValueError("Signature should be 64 bytes long")
    s = int.from_bytes(sig[32:], "little")
    if s > N_HALF:
        # libsecp's scalar negation, mod 2**256 for out-of-range s.
        s = (N - s) % (1 << 256)
    return bytes(sig[:32]) + s.to_bytes(32, "little")


def _ecdsa_verify(r, s, z, pt):
    if r == 0 or s == 0 or r >= N or s > N_HALF:
        return False
    w = inv_vartime(s, N)
    X1, Y1, Z1 = mul_g(z * w % N)
    X2, Y2, Z2 = mul_point(pt[0], pt[1], r * w % N)
    X, Y, Z = jadd(X1, Y1, Z1, X2, Y2, Z2)
    if Z == 0:
        return False
    # R.x mod N == r without an inversion: R.x is r or r + N (< P).
    zz = Z * Z % P
    if r * zz % P == X:
        return True
    return r + N < P and (r + N) * zz % P == X


def ecdsa_verify(sig, msg, pub, context=None):
    """True for a valid low-S signature (high-S ones fail, as in libsecp)."""
    if len(sig) != 64:
        raise ValueError("Signature should be 64 bytes long")
    if len(msg) != 32:
        raise ValueError("Message should be 32 bytes long")
    if len(pub) != 64:
        raise ValueError("Public key should be 64 bytes long")
    pt = _load_pub(pub)
    if pt is None:
        return False
    r = int.from_bytes(sig[:32], "little")
    s = int.from_bytes(sig[32:], "little")
    return _ecdsa_verify(r, s, int.from_bytes(msg, "big") % N, pt)


def _ecdsa_sign(msg, secret, nonce_function, extra_data):
    # -> (r, s, recid); raises ValueError("Failed to sign").
    if len(msg) != 32:
        raise ValueError("Message should be 32 bytes long")
    if len(secret) != 32:
        raise ValueError("Secret key should be 32 bytes long")
    if extra_data is not None and len(extra_data) != 32:
        raise ValueError("Extra data should be 32 bytes long")
    d = _scalar(secret)
    if not d:
        raise ValueError("Failed to sign")
    z = int.from_bytes(msg, "big") % N
    rng = None
    if nonce_function is None:
        # The default nonce function re-run with attempt = 0, 1, ... is one
        # DRBG stream: keep the stream instead of restarting it each time.
        seed = rfc6979_seed(msg, secret, extra_data)
        rng = Rfc6979(seed)
        wipe(seed)
    attempt = 0
    while True:
        if rng is not None:
            k32 = rng.generate()
        else:
            k32 = nonce_function(msg, secret, None, extra_data, attempt)
            if k32 is None or len(k32) < 32:
                raise ValueError("Failed to sign")
        k = _scalar(k32[:32])
        if k:
            X, Y, Z = mul_g(k)
            x, y = to_affine(X, Y, Z, True)
            r = x % N
            s = inv_blind(k, N) * (z + r * d) % N
            if r and s:
                break
        attempt += 1
    if rng is not None:
        rng.clear()
    recid = (2 if x >= N else 0) | (y & 1)
    if s > N_HALF:
        s = N - s
        recid ^= 1
    return r, s, recid


def ecdsa_sign(msg, secret, nonce_function=None, extra_data=None, context=None):
    """Low-S ECDSA signature with libsecp's RFC6979 nonces; extra_data (32
    bytes) is the "additional data" of RFC6979 3.6 (embit grinds low R with
    it). A custom nonce_function is called as
    nonce_function(msg32, key32, None, extra_data, attempt) and returns 32
    bytes, or None to give up (the MicroPython C module's convention)."""
    r, s, _ = _ecdsa_sign(msg, secret, nonce_function, extra_data)
    return _sig(r, s)


# ---------------------------------------------------------------- recovery


def ecdsa_sign_recoverable(msg, secret, context=None):
    r, s, recid = _ecdsa_sign(msg, secret, None, None)
    return _sig(r, s) + bytes((recid,))


def ecdsa_recoverable_signature_serialize_compact(sig, context=None):
    if len(sig) != 65:
        raise ValueError("Recoverable signature should be 65 bytes long")
    return ecdsa_signature_serialize_compact(sig[:64]), sig[64]


def ecdsa_recoverable_signature_parse_compact(compact_sig, recid, context=None):
    if len(compact_sig) != 64:
        raise ValueError("Signature should be 64 bytes long")
    if not 0 <= recid <= 3:
        raise ValueError("Failed parsing compact signature")
    return ecdsa_signature_parse_compact(compact_sig) + bytes((recid,))


def ecdsa_recoverable_signature_convert(sigin, context=None):
    if len(sigin) != 65:
        raise ValueError("Recoverable signature should be 65 bytes long")
    return bytes(sigin[:64])


def ecdsa_recover(sig, msghash, context=None):
    if len(sig) != 65:
        raise ValueError("Recoverable signature should be 65 bytes long")
    if len(msghash) != 32:
        raise ValueError("Message should be 32 bytes long")
    r = int.from_bytes(sig[:32], "little")
    s = int.from_bytes(sig[32:64], "little")
    recid = sig[64]
    pub = None
    if 0 < r < N and 0 < s < N and recid <= 3:
        x = r
        if recid & 2:
            x = r + N if r < P - N else P
        R = lift_x(x, recid & 1)
        if R is not None:
            rinv = inv_vartime(r, N)
            z = int.from_bytes(msghash, "big") % N
            X1, Y1, Z1 = mul_g((N - z) * rinv % N)
            X2, Y2, Z2 = mul_point(R[0], R[1], s * rinv % N)
            pub = to_affine(*jadd(X1, Y1, Z1, X2, Y2, Z2))
    if pub is None:
        raise ValueError("Failed to recover public key")
    return _save_pub(pub)


# ---------------------------------------------------------------- ECDH


def ecdh(pubkey, scalar, hashfn=None, data=None, context=None):
    """Shared secret: sha256(compressed(scalar * pubkey)) by default, else
    hashfn(x32, y32, data) (big-endian coordinates), padded to 32 bytes."""
    if not len(pubkey) == 64:
        raise ValueError("Pubkey should be 64 bytes long")
    if not len(scalar) == 32:
        raise ValueError("Scalar should be 32 bytes long")
    pt = _load_pub(pubkey)
    k = _scalar(scalar)
    if pt is None or not k:
        raise RuntimeError("Failed to compute the shared secret")
    X, Y, Z = mul_point(pt[0], pt[1], k)
    x, y = to_affine(X, Y, Z, True)
    xb = x.to_bytes(32, "big")
    if hashfn is None:
        h = hashlib.sha256(bytes((2 | (y & 1),)))
        h.update(xb)
        return h.digest()
    try:
        res = hashfn(xb, y.to_bytes(32, "big"), data)
        res = bytes(res)
    except Exception:
        res = None
    if res is None or len(res) > 32:
        raise RuntimeError("Failed to compute the shared secret")
    return res + bytes(32 - len(res))


# ---------------------------------------------------------------- BIP340


def xonly_pubkey_from_pubkey(pubkey, context=None):
    """(x-only public key with even y, whether y had to be negated)."""
    if len(pubkey) != 64:
        raise ValueError("Pubkey should be 64 bytes long")
    pt = _load_pub(pubkey)
    if pt is None:
        raise RuntimeError("Failed to convert the pubkey")
    x, y = pt
    parity = bool(y & 1)
    if parity:
        y = P - y
    return _save_pub((x, y)), parity


def xonly_pubkey_parse(xonly32, context=None):
    if len(xonly32) != 32:
        raise ValueError("Serialized xonly pubkey should be 32 bytes long")
    pt = lift_x(int.from_bytes(xonly32, "big"), 0)
    if pt is None:
        raise ValueError("Failed parsing xonly pubkey")
    return _save_pub(pt)


def xonly_pubkey_serialize(xonly_pub, context=None):
    if len(xonly_pub) != 64:
        raise ValueError("Xonly pubkey should be 64 bytes long")
    pt = _load_pub(xonly_pub)
    if pt is None:
        raise ValueError("Failed to serialize xonly pubkey")
    return pt[0].to_bytes(32, "big")


def keypair_create(secret, context=None):
    if len(secret) != 32:
        raise AssertionError
    d = _scalar(secret)
    if not d:
        raise ValueError("Failed to create keypair")
    X, Y, Z = mul_g(d)
    return bytes(secret) + _save_pub(to_affine(X, Y, Z, True))


def schnorrsig_verify(sig, msg, pubkey, context=None):
    """BIP340 verification against an opaque x-only public key (used as
    stored, like libsecp)."""
    if len(sig) != 64 or len(msg) != 32 or len(pubkey) != 64:
        raise AssertionError
    pt = _load_pub(pubkey)
    if pt is None:
        return False
    rx = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    if rx >= P or s >= N:
        return False
    e = int.from_bytes(tagged_hash(TAG_CHALLENGE, sig[:32], pt[0].to_bytes(32, "big"), msg), "big") % N
    X1, Y1, Z1 = mul_g(s)
    X2, Y2, Z2 = mul_point(pt[0], pt[1], (N - e) % N)
    R = to_affine(*jadd(X1, Y1, Z1, X2, Y2, Z2))
    return R is not None and R[1] & 1 == 0 and R[0] == rx


def schnorrsig_sign(msg, keypair, nonce_function=None, extra_data=None, context=None):
    """BIP340 signature with a 96-byte keypair or a 32-byte secret.

    extra_data is the 32-byte aux_rand; None means libsecp's NULL (the key is
    then not masked, which is NOT the same as 32 zero bytes). A custom
    nonce_function is called as
    nonce_function(msg32, key32, xonly32, algo16, extra_data) -> 32 bytes."""
    if len(msg) != 32:
        raise AssertionError
    if len(keypair) == 32:
        keypair = keypair_create(keypair, context=context)
    if len(keypair) != 96:
        raise AssertionError
    if extra_data is not None and len(extra_data) != 32:
        raise ValueError("Extra data should be 32 bytes long")
    d = _scalar(keypair[:32])
    pt = _load_pub(keypair[32:96])
    if not d or pt is None:
        raise ValueError("Failed to sign")
    if pt[1] & 1:
        d = N - d
    key32 = bytearray(d.to_bytes(32, "big"))
    px = pt[0].to_bytes(32, "big")
    if nonce_function is None:
        k32 = nonce_function_bip340(msg, key32, px, extra_data)
    else:
        k32 = nonce_function(msg, bytes(key32), px, BIP340_ALGO16, extra_data)
    wipe(key32)
    if k32 is None or len(k32) < 32:
        raise ValueError("Failed to sign")
    k = int.from_bytes(k32[:32], "big") % N
    if not k:
        raise ValueError("Failed to sign")
    X, Y, Z = mul_g(k)
    x, y = to_affine(X, Y, Z, True)
    if y & 1:
        k = N - k
    rx = x.to_bytes(32, "big")
    e = int.from_bytes(tagged_hash(TAG_CHALLENGE, rx, px, msg), "big") % N
    return rx + ((k + e * d) % N).to_bytes(32, "big")

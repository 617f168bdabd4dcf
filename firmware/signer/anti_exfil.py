"""Anti-exfil ECDSA (sign-to-contract), as libsecp256k1-zkp's ecdsa_s2c
module computes it, so that firmware that picked its nonces to leak the key
would be caught by the host.

Round 1: the host sends the commitment c = TH("s2c/ecdsa/data", rho) of its
random rho; the device answers the opening R0 = k*G, with k the RFC 6979
nonce of (key, message) and c as its extra data. Round 2: the host sends rho;
the device checks that it hashes to c, takes k again, adds
t = TH("s2c/ecdsa/point", ser33(R0) || rho) and signs with k + t (low-S).
The host checks that x(R0 + t*G) mod n is the signature's r: the nonce holds
its randomness, which the device committed to before seeing it.

TH(tag, m) = SHA256(SHA256(tag) || SHA256(tag) || m). Nothing here grinds
for a low R: the nonce is fixed by the protocol.
"""

from embit.ec import Signature
from embit.util import secp256k1

from .crypto.ec_nonce import N, Rfc6979, rfc6979_seed, tagged_hash, wipe

TAG_DATA = b"s2c/ecdsa/data"
TAG_POINT = b"s2c/ecdsa/point"


def _tag(name):
    t = tagged_hash(name)
    return t + t


_DATA = _tag(TAG_DATA)
_POINT = _tag(TAG_POINT)


class AntiExfilError(ValueError):
    """The host's entropy does not open its commitment, or a value has the wrong size."""


def host_commitment(rho):
    """c = TH("s2c/ecdsa/data", rho): what the host sends in round 1."""
    if len(rho) != 32:
        raise AntiExfilError("the host entropy must be 32 bytes")
    return tagged_hash(_DATA, rho)


def _nonce(secret, msg, commitment):
    """libsecp256k1's RFC 6979 nonce of (secret, msg) with `commitment` as
    its extra data, counting on until it is a valid scalar; a bytearray."""
    if len(commitment) != 32:
        raise AntiExfilError("the host commitment must be 32 bytes")
    seed = rfc6979_seed(msg, secret, commitment)
    rng = Rfc6979(seed)
    wipe(seed)
    try:
        while True:
            k = bytearray(rng.generate())
            if 0 < int.from_bytes(k, "big") < N:
                return k
            wipe(k)
    finally:
        rng.clear()


def _point(k):
    return secp256k1.ec_pubkey_serialize(secp256k1.ec_pubkey_create(bytes(k)))


def signer_commit(secret, msg, commitment):
    """Round 1: the 33-byte opening R0 = k*G for the host's commitment."""
    k = _nonce(secret, msg, commitment)
    try:
        return _point(k)
    finally:
        wipe(k)


def tweak(opening, rho):
    """t = TH("s2c/ecdsa/point", ser33(R0) || rho), as 32 bytes (a scalar
    below n, or AntiExfilError: libsecp256k1-zkp fails there too)."""
    t = tagged_hash(_POINT, opening, rho)
    if int.from_bytes(t, "big") >= N:
        raise AntiExfilError("the host entropy gives no valid tweak")
    return t


def sign(secret, msg, rho, commitment=None):
    """Round 2: (embit Signature over msg with the nonce k + t, opening R0).
    `commitment`, if given, is the one round 1 committed to: rho must open it."""
    c = host_commitment(rho)
    if commitment is not None and bytes(commitment) != c:
        raise AntiExfilError("the host entropy does not match its commitment")
    k = _nonce(secret, msg, c)
    try:
        opening = _point(k)
        final = secp256k1.ec_privkey_add(bytes(k), tweak(opening, rho))
    finally:
        wipe(k)

    def fixed(msg32, key32, algo16, data, attempt):
        return final if attempt == 0 else None  # k + t = 0 or r, s = 0: give up (never in practice)

    sig = secp256k1.ecdsa_sign(msg, secret, fixed, None)
    return Signature(sig), opening

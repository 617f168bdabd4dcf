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

from binascii import hexlify

from embit.ec import Signature
from embit.util import secp256k1

from .crypto.ec_nonce import N, Rfc6979, _tag, rfc6979_seed, tagged_hash, wipe
from .errors import BadPsbt, Refused

TAG_DATA = b"s2c/ecdsa/data"
TAG_POINT = b"s2c/ecdsa/point"


_DATA = _tag(TAG_DATA)
_POINT = _tag(TAG_POINT)


class AntiExfilError(Refused):
    """The host's entropy does not open its commitment, a value has the
    wrong size, or a second round does not follow the first."""


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


# ---------------------------------------------------------------- PSBT rounds
#
# The values travel in each input's PSBT proprietary fields, keyed by the
# signing key (docs/protocol.md, "Anti-exfil"): 0xFC || 0x02 "ae" || subtype
# || 33-byte public key. Subtypes: 0 the host's commitment (32 bytes), 1 the
# device's opening (33), 2 the host's entropy (32).

FIELD = 0xFC
PREFIX = b"\xfc\x02ae"
HOST_COMMITMENT = 0
SIGNER_OPENING = 1
HOST_ENTROPY = 2
RECORD = 32 + 33  # a signature's commitment and opening, in the round spool


def key_data(subtype, sec):
    """The key data (after the 0xFC type byte) of a field for key `sec`."""
    return PREFIX[1:] + bytes([subtype]) + sec


def _value(i, inp, subtype, sec, size):
    v = inp.unknown.get(PREFIX + bytes([subtype]) + sec)
    if v is not None and len(v) != size:
        raise BadPsbt("input %d: the anti-exfil field %d of key %s is %d bytes, not %d"
                      % (i, subtype, hexlify(sec).decode(), len(v), size))
    return v


class Commit:
    """Round 1, called for each ECDSA signature the device would make: the
    opening for the host's commitment, added to the input; nothing signed.
    The commitments and openings go to `spool` (a flash file), in signing
    order, for round 2 to compare with."""

    signs = False

    def __init__(self, spool):
        self.spool = spool
        self.count = 0

    def ecdsa(self, i, inp, hd, sec, h, added):
        c = _value(i, inp, HOST_COMMITMENT, sec, 32)
        if c is None:
            raise AntiExfilError("input %d: no anti-exfil commitment for key %s" % (i, hexlify(sec).decode()))
        opening = signer_commit(hd.key.secret, h, c)
        self.spool.write(c)
        self.spool.write(opening)
        added.add(FIELD, key_data(SIGNER_OPENING, sec), opening)
        self.count += 1


class Reveal:
    """Round 2: each ECDSA signature made with the host's entropy, after
    checking that it opens the commitment of round 1 for the same input and
    key, in the same order (a PSBT that asks for other signatures, or
    changed a commitment, is refused). The PSBT need not carry the
    commitments and openings again (the spool has them); those it carries
    must be round 1's."""

    signs = True

    def __init__(self, spool, count):
        self.spool = spool
        self.left = count

    def ecdsa(self, i, inp, hd, sec, h, added):
        where = "input %d, key %s" % (i, hexlify(sec).decode())
        c = _value(i, inp, HOST_COMMITMENT, sec, 32)
        rho = _value(i, inp, HOST_ENTROPY, sec, 32)
        given = _value(i, inp, SIGNER_OPENING, sec, 33)
        record = self.spool.read(RECORD) if self.left > 0 else b""
        self.left -= 1
        if len(record) != RECORD or (c is not None and bytes(c) != record[:32]):
            raise AntiExfilError("%s: not the commitment of the first round" % where)
        if given is not None and bytes(given) != record[32:]:
            raise AntiExfilError("%s: the opening in the PSBT is not the one this device gave" % where)
        if rho is None:
            raise AntiExfilError("%s: no host entropy" % where)
        sig, opening = sign(hd.key.secret, h, rho, record[:32])
        if opening != record[32:]:  # the same nonce as round 1, or nothing is signed
            raise AntiExfilError("%s: the nonce is not the one of the first round" % where)
        added.add(0x02, sec, sig.serialize() + b"\x01")  # PSBT_IN_PARTIAL_SIG, SIGHASH_ALL

    def done(self):
        if self.left != 0:
            raise AntiExfilError("the PSBT asks for %d signatures fewer than the first round" % self.left)

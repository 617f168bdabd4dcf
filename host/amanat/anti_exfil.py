"""The host's half of anti-exfil signing (libsecp256k1-zkp's ecdsa_s2c):
fresh entropy, its commitment, and the check that a device's ECDSA signature
used a nonce that holds that entropy.

The host sends c = TH("s2c/ecdsa/data", rho) and gets the opening R0 before
it reveals rho; the device then signs with k + t, t = TH("s2c/ecdsa/point",
ser33(R0) || rho). A signature passes only if it verifies under the key and
x(R0 + t*G) mod n == r: a device that chose its own nonce (to leak its key
through r, a few bits a signature) cannot make both true. Written here
independently of the firmware's anti_exfil.py, with coincurve.
"""

import hashlib
import os

import coincurve

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class AntiExfilFailure(Exception):
    """A signature whose nonce does not hold the host's entropy: the device may be compromised."""


def tagged_hash(tag: bytes, data: bytes) -> bytes:
    t = hashlib.sha256(tag).digest()
    return hashlib.sha256(t + t + data).digest()


def new_entropy() -> bytes:
    return os.urandom(32)


def commitment(rho: bytes) -> bytes:
    return tagged_hash(b"s2c/ecdsa/data", rho)


def _der_rs(der: bytes) -> tuple[int, int]:
    sig = coincurve.ecdsa.der_to_cdata(der)
    compact = coincurve.ecdsa.serialize_compact(sig)
    return int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:], "big")


def check(pubkey: bytes, msg32: bytes, rho: bytes, opening: bytes, der: bytes) -> None:
    """Raise AntiExfilFailure unless `der` (DER, no sighash byte) is a low-S
    signature of msg32 by `pubkey` whose nonce is R0 + t*G for the opening
    R0 the device gave before it saw rho."""
    try:
        r, s = _der_rs(der)
        ok = coincurve.PublicKey(pubkey).verify(der, msg32, hasher=None)
    except (ValueError, TypeError) as e:
        raise AntiExfilFailure(f"the signature does not parse: {e}") from None
    if not ok or s > N // 2:
        raise AntiExfilFailure("the signature does not verify under the key")
    t = tagged_hash(b"s2c/ecdsa/point", opening + rho)
    if int.from_bytes(t, "big") >= N:
        raise AntiExfilFailure("the entropy gives no valid tweak")
    try:
        nonce = coincurve.PublicKey(opening).add(t)
    except ValueError:
        raise AntiExfilFailure("the device's opening is not a point on the curve") from None
    if int.from_bytes(nonce.format(True)[1:], "big") % N != r:
        raise AntiExfilFailure("the signature's nonce does not hold the host's entropy")

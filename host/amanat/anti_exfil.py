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
import json
import os
from pathlib import Path

import coincurve

from .errors import AntiExfilFailure, ProtocolError
from .psbt_raw import PSBT_IN_BIP32_DERIVATION, PSBT_IN_PARTIAL_SIG, Maps

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# PSBT proprietary fields of each input, keyed by the signing key:
# 0xFC || 0x02 "ae" || subtype || 33-byte public key (docs/protocol.md).
PREFIX = b"\xfc\x02ae"
HOST_COMMITMENT, SIGNER_OPENING, HOST_ENTROPY = 0, 1, 2


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


# ---------------------------------------------------------------- PSBT rounds


def field(subtype: int, sec: bytes) -> bytes:
    return PREFIX + bytes([subtype]) + sec


def stripped(maps: Maps) -> Maps:
    """The maps without any anti-exfil field: what leaves the host."""
    return Maps(dict(maps.glob), [{k: v for k, v in m.items() if not k.startswith(PREFIX)} for m in maps.inputs],
                [dict(m) for m in maps.outputs])


def wanted(maps: Maps, fingerprint: bytes) -> list[tuple[int, bytes]]:
    """(input, key) of every ECDSA signature the device with `fingerprint`
    may make: the inputs' BIP32 derivations of compressed keys from its seed."""
    return [(i, k[1:]) for i, m in enumerate(maps.inputs) for k, v in m.items()
            if k[0] == PSBT_IN_BIP32_DERIVATION and len(k) == 34 and v[:4] == fingerprint]


def with_commitments(maps: Maps, rhos: dict) -> bytes:
    """Round 1: the PSBT with the commitment of each entropy."""
    out = stripped(maps)
    for (i, sec), rho in rhos.items():
        out.inputs[i][field(HOST_COMMITMENT, sec)] = commitment(rho)
    return out.serialize()


def openings(answer: Maps, rhos: dict) -> dict:
    """{(input, key): opening} the device's first answer holds; ProtocolError
    for an opening of a key it was not asked for."""
    out = {}
    for i, m in enumerate(answer.inputs):
        for k, v in m.items():
            if k.startswith(PREFIX) and len(k) == len(PREFIX) + 34 and k[len(PREFIX)] == SIGNER_OPENING:
                if (i, k[-33:]) not in rhos or len(v) != 33:
                    raise ProtocolError(f"input {i}: the device gave an anti-exfil opening it was not asked for")
                out[(i, k[-33:])] = v
    return out


def with_entropy(maps: Maps, rhos: dict, opened: dict) -> bytes:
    """Round 2: the PSBT with the entropy of each opening (the device kept
    the commitments and openings: they are not sent again)."""
    out = stripped(maps)
    for (i, sec) in opened:
        out.inputs[i][field(HOST_ENTROPY, sec)] = rhos[(i, sec)]
    return out.serialize()


def check_signatures(sent: Maps, signed: Maps, rhos: dict, opened: dict) -> int:
    """Check every ECDSA signature `signed` adds to `sent` against its
    round's entropy and opening (AntiExfilFailure); their number."""
    from .psbt_verify import SignatureChecker

    checker = SignatureChecker(signed)
    count = 0
    for i, (before, after) in enumerate(zip(sent.inputs, signed.inputs)):
        for k, v in after.items():
            if k[0] != PSBT_IN_PARTIAL_SIG or k in before:
                continue
            sec = k[1:]
            if (i, sec) not in opened:
                raise AntiExfilFailure(f"input {i}: an ECDSA signature for key {sec.hex()} outside the anti-exfil rounds")
            try:
                check(sec, checker.ecdsa_digest(i, sec, v[-1]), rhos[(i, sec)], opened[(i, sec)], v[:-1])
            except AntiExfilFailure as e:
                raise AntiExfilFailure(f"input {i}, key {sec.hex()}: {e.reason}") from None
            count += 1
    if count != len(opened):
        raise AntiExfilFailure(f"the device opened {len(opened)} nonces and made {count} signatures")
    return count


class Book:
    """The host's record of one device's anti-exfil rounds: the entropy of
    a PSBT whose second round has not succeeded yet (sent again, never
    replaced, so that a device that aborts after seeing it gains nothing by
    aborting), and how many second rounds the device has aborted. A JSON
    file per device fingerprint in the host's state folder
    ($AMANAT_STATE_DIR, else $XDG_STATE_HOME/amanat, else ~/.local/state/amanat)."""

    def __init__(self, fingerprint: str):
        base = os.environ.get("AMANAT_STATE_DIR") or os.path.join(
            os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state"), "amanat")
        self.path = Path(base) / f"anti-exfil-{fingerprint}.json"
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.data.setdefault("aborted", 0)
        self.data.setdefault("pending", {})

    def _save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, sort_keys=True))
        os.replace(tmp, self.path)

    def entropy(self, psbt_key: str, signatures: list[tuple[int, bytes]]) -> dict:
        """{(input, key): rho}: those kept for this PSBT, new ones for the rest (saved first)."""
        kept = self.data["pending"].get(psbt_key, {})
        rhos = {}
        for i, sec in signatures:
            name = f"{i}:{sec.hex()}"
            kept.setdefault(name, new_entropy().hex())
            rhos[(i, sec)] = bytes.fromhex(kept[name])
        self.data["pending"][psbt_key] = kept
        self._save()
        return rhos

    def aborted(self) -> int:
        """Count a second round the device did not finish; the count so far."""
        self.data["aborted"] += 1
        self._save()
        return self.data["aborted"]

    def finished(self, psbt_key: str):
        self.data["pending"].pop(psbt_key, None)
        self._save()

"""Signature hashes of a transaction, for every sighash type: legacy
(Bitcoin Core's SignatureHash), segwit v0 (BIP143) and taproot (BIP341).

The per-transaction parts (hashPrevouts, hashSequence, hashOutputs and
BIP341's single-SHA256 forms) are computed once, so that checking every input
of a transaction takes time linear in its size. Checked against
libbitcoinkernel in tests/host/test_sighash.py: signatures over these digests,
of every type, pass Bitcoin Core's script interpreter.

embit 0.8 is not used for this: its legacy SINGLE blanks outputs with a value
of 0xFFFFFFFF instead of -1, and its taproot SINGLE / ANYONECANPAY hash the
wrong fields.
"""

import hashlib
import struct
from dataclasses import dataclass

from embit import compact

ALL, NONE, SINGLE, ANYONECANPAY, DEFAULT = 0x01, 0x02, 0x03, 0x80, 0x00
ECDSA_TYPES = frozenset({0x01, 0x02, 0x03, 0x81, 0x82, 0x83})
SCHNORR_TYPES = ECDSA_TYPES | {DEFAULT}
OP_CODESEPARATOR = 0xAB
_ONE = b"\x01" + bytes(31)  # legacy SINGLE without its output: the digest is uint256 1
_TAP_SIGHASH = hashlib.sha256(b"TapSighash").digest() * 2


class SighashError(ValueError):
    """A digest that does not exist: an unknown type, or taproot SINGLE for an
    input without its output."""


def _sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def _script(b: bytes) -> bytes:
    return compact.to_bytes(len(b)) + b


@dataclass
class Spent:
    value: int
    script_pubkey: bytes


class TxDigests:
    """The digests of one transaction: `outpoints` (36 bytes each: txid as
    serialized, vout), `sequences`, `outputs` (each serialized: amount,
    script), and for taproot the outputs every input spends (`spent`, a
    list of Spent; None if any is unknown)."""

    def __init__(self, version: int, locktime: int, outpoints: list, sequences: list, outputs: list,
                 spent: list | None = None):
        self.version = struct.pack("<I", version)
        self.locktime = struct.pack("<I", locktime)
        self.outpoints = outpoints
        self.sequences = [struct.pack("<I", s) for s in sequences]
        self.outputs = outputs
        self.spent = spent
        self._v0 = None
        self._v1 = None

    @classmethod
    def from_tx(cls, tx, spent=None):
        """From an embit Transaction (and the outputs its inputs spend, embit
        TransactionOutputs or None)."""
        outs = None
        if spent is not None and all(s is not None for s in spent):
            outs = [Spent(s.value, s.script_pubkey.data) for s in spent]
        return cls(tx.version, tx.locktime, [vin.txid[::-1] + struct.pack("<I", vin.vout) for vin in tx.vin],
                   [vin.sequence for vin in tx.vin], [out.serialize() for out in tx.vout], outs)

    # -- legacy

    def legacy(self, i: int, script_code: bytes, sighash: int) -> bytes:
        """Bitcoin Core's SignatureHash for SigVersion BASE. `script_code` is
        the script being executed (the redeem script of P2SH); one with
        OP_CODESEPARATOR is refused (its digest depends on the position)."""
        if sighash not in ECDSA_TYPES:
            raise SighashError(f"sighash type 0x{sighash:02x} is not a standard one")
        if has_codeseparator(script_code):
            raise SighashError("a legacy script with OP_CODESEPARATOR")
        base, acp = sighash & 0x1F, bool(sighash & ANYONECANPAY)
        if base == SINGLE and i >= len(self.outputs):
            return _ONE
        parts = [self.version]
        ins = [i] if acp else range(len(self.outpoints))
        parts.append(compact.to_bytes(len(ins)))
        for j in ins:
            seq = self.sequences[j] if j == i or base == ALL else bytes(4)
            parts += [self.outpoints[j], _script(script_code) if j == i else b"\x00", seq]
        if base == NONE:
            parts.append(b"\x00")
        elif base == SINGLE:
            parts.append(compact.to_bytes(i + 1))
            parts += [b"\xff" * 8 + b"\x00"] * i + [self.outputs[i]]
        else:
            parts.append(compact.to_bytes(len(self.outputs)))
            parts += self.outputs
        parts += [self.locktime, struct.pack("<I", sighash)]
        return _dsha(b"".join(parts))

    # -- segwit v0 (BIP143)

    def segwit_v0(self, i: int, script_code: bytes, value: int, sighash: int) -> bytes:
        if sighash not in ECDSA_TYPES:
            raise SighashError(f"sighash type 0x{sighash:02x} is not a standard one")
        if self._v0 is None:
            self._v0 = (_dsha(b"".join(self.outpoints)), _dsha(b"".join(self.sequences)),
                        _dsha(b"".join(self.outputs)))
        prevouts, sequences, outputs = self._v0
        base, acp = sighash & 0x1F, bool(sighash & ANYONECANPAY)
        zero = bytes(32)
        if base == SINGLE:
            outputs = _dsha(self.outputs[i]) if i < len(self.outputs) else zero
        elif base == NONE:
            outputs = zero
        return _dsha(b"".join([
            self.version, zero if acp else prevouts, zero if acp or base != ALL else sequences,
            self.outpoints[i], _script(script_code), struct.pack("<q", value), self.sequences[i],
            outputs, self.locktime, struct.pack("<I", sighash)]))

    # -- taproot (BIP341)

    def taproot(self, i: int, sighash: int, leaf_hash: bytes | None = None, codesep_pos: int = 0xFFFFFFFF,
                annex: bytes | None = None) -> bytes:
        """The BIP341 digest of input i: key path, or with `leaf_hash` the
        script path (BIP342: key version 0)."""
        if sighash not in SCHNORR_TYPES:
            raise SighashError(f"sighash type 0x{sighash:02x} is not a taproot one")
        if self.spent is None:
            raise SighashError("a taproot digest needs the output every input spends")
        if self._v1 is None:
            self._v1 = (_sha(b"".join(self.outpoints)), _sha(b"".join(struct.pack("<q", s.value) for s in self.spent)),
                        _sha(b"".join(_script(s.script_pubkey) for s in self.spent)), _sha(b"".join(self.sequences)),
                        _sha(b"".join(self.outputs)))
        prevouts, amounts, spks, sequences, outputs = self._v1
        base, acp = sighash & 0x03, bool(sighash & ANYONECANPAY)
        parts = [b"\x00", bytes([sighash]), self.version, self.locktime]
        if not acp:
            parts += [prevouts, amounts, spks, sequences]
        if base not in (NONE, SINGLE):
            parts.append(outputs)
        parts.append(bytes([(2 if leaf_hash is not None else 0) + (1 if annex is not None else 0)]))
        if acp:
            s = self.spent[i]
            parts += [self.outpoints[i], struct.pack("<q", s.value), _script(s.script_pubkey), self.sequences[i]]
        else:
            parts.append(struct.pack("<I", i))
        if annex is not None:
            parts.append(_sha(_script(annex)))
        if base == SINGLE:
            if i >= len(self.outputs):
                raise SighashError(f"SINGLE signature of input {i}, which has no output {i}")
            parts.append(_sha(self.outputs[i]))
        if leaf_hash is not None:
            parts += [leaf_hash, b"\x00", struct.pack("<I", codesep_pos)]
        return _sha(_TAP_SIGHASH + b"".join(parts))


def has_codeseparator(code: bytes) -> bool:
    """Whether OP_CODESEPARATOR is one of the script's opcodes (not inside a push)."""
    n = 0
    while n < len(code):
        op = code[n]
        n += 1
        if op <= 0x4B:
            n += op
        elif op in (0x4C, 0x4D, 0x4E):
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            n += width + int.from_bytes(code[n : n + width], "little")
        elif op == OP_CODESEPARATOR:
            return True
    return False

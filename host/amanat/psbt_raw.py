"""A PSBT's raw form (BIP174, BIP370, BIP371): its key types, its byte-exact
key-value maps, and the transaction and spent outputs it states.

embit parses the fields. What the host's checks need beyond embit lives here,
in one place: maps kept byte for byte (to compare a PSBT before and after a
signer, and to rewrite one without touching unknown fields), v0 sequences of
0, and BIP370's required locktimes.
"""

import gc
import hashlib
import struct
from contextlib import contextmanager
from dataclasses import dataclass

from embit import compact
from embit.psbt import PSBT
from embit.transaction import Transaction, TransactionInput

from .errors import PsbtError

MAGIC = b"psbt\xff"

# Key types (a key's first byte) the host reads or writes.
PSBT_GLOBAL_UNSIGNED_TX = 0x00
PSBT_GLOBAL_TX_VERSION = 0x02
PSBT_GLOBAL_FALLBACK_LOCKTIME = 0x03
PSBT_GLOBAL_INPUT_COUNT = 0x04
PSBT_GLOBAL_OUTPUT_COUNT = 0x05
PSBT_GLOBAL_TX_MODIFIABLE = 0x06
PSBT_GLOBAL_VERSION = 0xFB
MODIFIABLE_INPUTS_OUTPUTS = 0x03  # its Inputs and Outputs Modifiable flags (BIP370)
PSBT_IN_NON_WITNESS_UTXO = 0x00
PSBT_IN_WITNESS_UTXO = 0x01
PSBT_IN_PARTIAL_SIG = 0x02
PSBT_IN_SIGHASH_TYPE = 0x03
PSBT_IN_REDEEM_SCRIPT = 0x04
PSBT_IN_WITNESS_SCRIPT = 0x05
PSBT_IN_BIP32_DERIVATION = 0x06
PSBT_IN_FINAL_SCRIPTSIG = 0x07
PSBT_IN_FINAL_SCRIPTWITNESS = 0x08
PSBT_IN_POR_COMMITMENT = 0x09
PSBT_IN_RIPEMD160 = 0x0A
PSBT_IN_SHA256 = 0x0B
PSBT_IN_HASH160 = 0x0C
PSBT_IN_HASH256 = 0x0D
PSBT_IN_PREVIOUS_TXID = 0x0E
PSBT_IN_OUTPUT_INDEX = 0x0F
PSBT_IN_SEQUENCE = 0x10
PSBT_IN_REQUIRED_TIME_LOCKTIME = 0x11
PSBT_IN_REQUIRED_HEIGHT_LOCKTIME = 0x12
PSBT_IN_TAP_KEY_SIG = 0x13
PSBT_IN_TAP_SCRIPT_SIG = 0x14
PSBT_IN_TAP_LEAF_SCRIPT = 0x15
PSBT_IN_TAP_BIP32_DERIVATION = 0x16
PSBT_IN_TAP_INTERNAL_KEY = 0x17
PSBT_IN_TAP_MERKLE_ROOT = 0x18
PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS = 0x1A
PSBT_IN_MUSIG2_PUB_NONCE = 0x1B
PSBT_IN_MUSIG2_PARTIAL_SIG = 0x1C
PSBT_OUT_AMOUNT = 0x03
PSBT_OUT_SCRIPT = 0x04
PSBT_OUT_TAP_TREE = 0x06

# Signature records and the lengths of their keys: ECDSA (type, compressed or
# uncompressed key), taproot key path (type only), taproot script path (type,
# x-only key, leaf hash).
SIGNATURE_KEY_LENGTHS = {PSBT_IN_PARTIAL_SIG: (34, 66), PSBT_IN_TAP_KEY_SIG: (1,), PSBT_IN_TAP_SCRIPT_SIG: (65,)}

# Input fields a finalizer clears (BIP174): signing data, not the UTXOs, the
# BIP370 transaction fields or proprietary/unknown ones.
CLEARED_ON_FINALIZE = {
    PSBT_IN_PARTIAL_SIG, PSBT_IN_SIGHASH_TYPE, PSBT_IN_REDEEM_SCRIPT, PSBT_IN_WITNESS_SCRIPT,
    PSBT_IN_BIP32_DERIVATION, PSBT_IN_POR_COMMITMENT, PSBT_IN_RIPEMD160, PSBT_IN_SHA256, PSBT_IN_HASH160,
    PSBT_IN_HASH256, PSBT_IN_TAP_KEY_SIG, PSBT_IN_TAP_SCRIPT_SIG, PSBT_IN_TAP_LEAF_SCRIPT,
    PSBT_IN_TAP_BIP32_DERIVATION, PSBT_IN_TAP_INTERNAL_KEY, PSBT_IN_TAP_MERKLE_ROOT,
    PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS, PSBT_IN_MUSIG2_PUB_NONCE, PSBT_IN_MUSIG2_PARTIAL_SIG,
}


@contextmanager
def gc_paused():
    """No cyclic garbage collection while a PSBT is worked on: embit's parse
    makes objects per field, and each collector pass walks all of them, which
    makes a linear job grow faster than the PSBT. Reference counting still
    frees what is dropped; the collector runs again afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def is_signature_key(key: bytes) -> bool:
    """A well-formed key of a signature record."""
    return len(key) in SIGNATURE_KEY_LENGTHS.get(key[0], ())


@dataclass
class Maps:
    """A PSBT as raw key-value maps, byte-exact: {key bytes: value bytes}."""

    glob: dict
    inputs: list
    outputs: list

    def serialize(self) -> bytes:
        out = bytearray(MAGIC)
        for m in [self.glob, *self.inputs, *self.outputs]:
            for k, v in m.items():
                out += compact.to_bytes(len(k)) + k + compact.to_bytes(len(v)) + v
            out += b"\x00"
        return bytes(out)


def parse(raw: bytes, what: str = "the PSBT") -> tuple[PSBT, Maps]:
    """(embit's PSBT, as parse_psbt reads it; its raw maps). `what` names the
    PSBT in errors; a duplicated key or data after the last map is refused."""
    try:
        psbt = parse_psbt(raw)
    except Exception as e:
        raise PsbtError(f"{what} does not parse: {e}") from None
    return psbt, _read_maps(raw, what, len(psbt.inputs), len(psbt.outputs))


def parse_maps(raw: bytes, what: str = "the PSBT") -> Maps:
    """The raw maps alone, without embit's objects (what the verifier
    reads): the numbers of inputs and outputs from the global unsigned
    transaction (v0) or BIP370's counts (v2)."""
    if not raw.startswith(MAGIC):
        raise PsbtError(f"{what} does not parse: no PSBT magic")
    try:
        glob, _ = _map_at(raw, len(MAGIC), what)
        if bytes([PSBT_GLOBAL_UNSIGNED_TX]) in glob:
            tx = parse_tx(glob[bytes([PSBT_GLOBAL_UNSIGNED_TX])])
            counts = len(tx.outpoints), len(tx.outputs)
        else:
            counts = tuple(compact.from_bytes(glob[bytes([k])]) for k in (PSBT_GLOBAL_INPUT_COUNT,
                                                                          PSBT_GLOBAL_OUTPUT_COUNT))
    except PsbtError as e:
        raise PsbtError(f"{what} does not parse: {e.message}") from None
    except Exception as e:
        raise PsbtError(f"{what} does not parse: {e}") from None
    return _read_maps(raw, what, *counts)


def _compact_at(b: bytes, pos: int) -> tuple[int, int]:
    n = b[pos]
    if n < 0xFD:
        return n, pos + 1
    width = 2 if n == 0xFD else 4 if n == 0xFE else 8
    end = pos + 1 + width
    if end > len(b):
        raise PsbtError("truncated")
    return int.from_bytes(b[pos + 1 : end], "little"), end


def _map_at(raw: bytes, pos: int, what: str) -> tuple[dict, int]:
    """The key-value map at `pos` of `raw` and where the next one starts."""
    m = {}
    size = len(raw)
    while True:
        if pos >= size:
            raise PsbtError(f"{what} is truncated")
        n, pos = _compact_at(raw, pos)
        if n == 0:
            return m, pos
        key = raw[pos : pos + n]
        pos += n
        if pos >= size:
            raise PsbtError(f"{what} is truncated")
        n, pos = _compact_at(raw, pos)
        if pos + n > size:
            raise PsbtError(f"{what} is truncated")
        if key in m:
            raise PsbtError(f"{what} has a duplicated key {key.hex()}")
        m[key] = raw[pos : pos + n]
        pos += n


def _read_maps(raw: bytes, what: str, inputs: int, outputs: int) -> Maps:
    pos = len(MAGIC)  # checked by the caller
    try:
        glob, pos = _map_at(raw, pos, what)
        maps = Maps(glob, [], [])
        for into, n in ((maps.inputs, inputs), (maps.outputs, outputs)):
            for _ in range(n):
                m, pos = _map_at(raw, pos, what)
                into.append(m)
    except PsbtError:
        raise
    except Exception as e:
        raise PsbtError(f"{what} is truncated: {e}") from None
    if pos != len(raw):
        raise PsbtError(f"{what} has data after its last output")
    return maps


# -- transactions as bytes (what the verifier and the sighashes need, without embit's objects)


@dataclass
class RawTx:
    """A transaction without its witnesses: outpoints as serialized (txid
    in internal byte order, vout), sequences, outputs as serialized."""

    version: int
    locktime: int
    outpoints: list
    sequences: list
    outputs: list
    script_sigs: list

    def serialize(self) -> bytes:
        out = [struct.pack("<I", self.version), compact.to_bytes(len(self.outpoints))]
        for op, sig, seq in zip(self.outpoints, self.script_sigs, self.sequences):
            out += [op, compact.to_bytes(len(sig)), sig, struct.pack("<I", seq)]
        out += [compact.to_bytes(len(self.outputs)), *self.outputs, struct.pack("<I", self.locktime)]
        return b"".join(out)

    def txid(self) -> bytes:
        """In display order, as explorers and Bitcoin Core print it."""
        return hashlib.sha256(hashlib.sha256(self.serialize()).digest()).digest()[::-1]


def parse_tx(b: bytes) -> RawTx:
    """A serialized transaction (with or without witnesses); PsbtError if
    it is not exactly one."""
    try:
        version = int.from_bytes(b[0:4], "little")
        pos = 4
        segwit = b[4:6] == b"\x00\x01"
        if segwit:
            pos = 6
        n, pos = _compact_at(b, pos)
        outpoints, sigs, seqs = [], [], []
        for _ in range(n):
            outpoints.append(b[pos : pos + 36])
            size, pos = _compact_at(b, pos + 36)
            sigs.append(b[pos : pos + size])
            pos += size
            seqs.append(int.from_bytes(b[pos : pos + 4], "little"))
            pos += 4
        n, pos = _compact_at(b, pos)
        outputs = []
        for _ in range(n):
            size, end = _compact_at(b, pos + 8)
            outputs.append(b[pos : end + size])
            pos = end + size
        if segwit:
            for _ in outpoints:
                items, pos = _compact_at(b, pos)
                for _ in range(items):
                    size, pos = _compact_at(b, pos)
                    pos += size
        locktime = int.from_bytes(b[pos : pos + 4], "little")
        pos += 4
    except (IndexError, PsbtError):
        raise PsbtError("a transaction in the PSBT is truncated") from None
    if pos != len(b):  # a short slice anywhere leaves pos past the end
        raise PsbtError("a transaction in the PSBT does not parse (wrong length)")
    return RawTx(version, locktime, outpoints, seqs, outputs, sigs)


def _output_at(b: bytes, vout: int) -> bytes | None:
    """Output `vout` of a transaction without witnesses, serialized (None if
    it has fewer); the bytes must be exactly one transaction (PsbtError)."""
    try:
        n, pos = _compact_at(b, 4)
        for _ in range(n):
            size, pos = _compact_at(b, pos + 36)
            pos += size + 4
        n, pos = _compact_at(b, pos)
        found = None
        for k in range(n):
            size, end = _compact_at(b, pos + 8)
            if k == vout:
                found = b[pos : end + size]
            pos = end + size
    except (IndexError, PsbtError):
        raise PsbtError("a transaction in the PSBT is truncated") from None
    if pos + 4 != len(b):
        raise PsbtError("a transaction in the PSBT does not parse (wrong length)")
    return found


def output_parts(out: bytes) -> tuple[int, bytes]:
    """(amount, scriptPubKey) of a serialized output; PsbtError unless exactly one."""
    if len(out) < 9:
        raise PsbtError("an output of the PSBT is truncated")
    size, pos = _compact_at(out, 8)
    if pos + size != len(out):
        raise PsbtError("an output of the PSBT does not parse (wrong length)")
    return int.from_bytes(out[:8], "little", signed=True), out[pos:]


def psbt_version(maps: Maps) -> int:
    v = maps.glob.get(bytes([PSBT_GLOBAL_VERSION]))
    return 0 if v is None else int.from_bytes(v, "little")


def transaction_of(maps: Maps) -> RawTx:
    """The unsigned transaction exactly as the PSBT states it (BIP174's
    global transaction, or BIP370's fields and required locktimes), read
    from the raw maps: what unsigned_tx(psbt) gives, without embit."""
    g = maps.glob
    if psbt_version(maps) != 2:
        raw = g.get(bytes([PSBT_GLOBAL_UNSIGNED_TX]))
        if raw is None:
            raise PsbtError("the PSBT has no unsigned transaction")
        tx = parse_tx(raw)
        if len(tx.outpoints) != len(maps.inputs) or len(tx.outputs) != len(maps.outputs):
            raise PsbtError("the PSBT's maps do not match its unsigned transaction")
        return tx
    version = g.get(bytes([PSBT_GLOBAL_TX_VERSION]))
    fallback = g.get(bytes([PSBT_GLOBAL_FALLBACK_LOCKTIME]), bytes(4))
    if version is None or len(version) != 4 or len(fallback) != 4:
        raise PsbtError("the PSBT's transaction version or locktime does not fit in 4 bytes")
    outpoints, seqs = [], []
    for i, m in enumerate(maps.inputs):
        txid, vout = m.get(bytes([PSBT_IN_PREVIOUS_TXID])), m.get(bytes([PSBT_IN_OUTPUT_INDEX]))
        seq = m.get(bytes([PSBT_IN_SEQUENCE]), b"\xff" * 4)
        if txid is None or vout is None or len(txid) != 32 or len(vout) != 4 or len(seq) != 4:
            raise PsbtError(f"input {i}: no valid outpoint or sequence in the PSBT")
        outpoints.append(txid + vout)
        seqs.append(int.from_bytes(seq, "little"))
    outputs = []
    for j, m in enumerate(maps.outputs):
        amount, spk = m.get(bytes([PSBT_OUT_AMOUNT])), m.get(bytes([PSBT_OUT_SCRIPT]))
        if amount is None or spk is None or len(amount) != 8 or amount[7] & 0x80:
            raise PsbtError(f"output {j}: no valid amount or script in the PSBT")
        outputs.append(amount + compact.to_bytes(len(spk)) + spk)
    locktime = _required_locktime([m.get(bytes([PSBT_IN_REQUIRED_TIME_LOCKTIME])) for m in maps.inputs],
                                  [m.get(bytes([PSBT_IN_REQUIRED_HEIGHT_LOCKTIME])) for m in maps.inputs],
                                  int.from_bytes(fallback, "little"))
    return RawTx(int.from_bytes(version, "little"), locktime, outpoints, seqs, outputs, [b""] * len(outpoints))


def spent_of(maps: Maps, i: int, tx: RawTx):
    """The output input i spends, as a sighash.Spent: from the full previous
    transaction if given (its txid checked against the outpoint), else the
    witness UTXO; None if the PSBT does not say."""
    from .sighash import Spent

    m = maps.inputs[i]
    prev_raw, utxo = m.get(bytes([PSBT_IN_NON_WITNESS_UTXO])), m.get(bytes([PSBT_IN_WITNESS_UTXO]))
    if prev_raw is not None:
        op = tx.outpoints[i]
        vout = int.from_bytes(op[32:], "little")
        if prev_raw[4:6] != b"\x00\x01":  # no witness: the txid is the hash of these bytes
            txid = hashlib.sha256(hashlib.sha256(prev_raw).digest()).digest()[::-1]
            out = _output_at(prev_raw, vout)
        else:
            prev = parse_tx(prev_raw)
            txid = prev.txid()
            out = prev.outputs[vout] if vout < len(prev.outputs) else None
        if txid != op[:32][::-1]:
            raise PsbtError(f"input {i}: the previous transaction does not match the outpoint")
        if out is None:
            raise PsbtError(f"input {i}: the previous transaction has no output {vout}")
        if utxo is not None and utxo != out:
            raise PsbtError(f"input {i}: witness UTXO and previous transaction disagree")
        utxo = out
    if utxo is None:
        return None
    return Spent(*output_parts(utxo))


def parse_psbt(raw: bytes) -> PSBT:
    """PSBT.parse, but each input of a v0 PSBT keeps the sequence its unsigned
    transaction states: embit 0.8 reads the input maps against `psbt.tx`, which
    turns a sequence of 0 into 0xFFFFFFFF. Errors are embit's."""
    psbt = PSBT.parse(raw)
    if psbt.version != 2:
        glob, _ = _map_at(raw, len(MAGIC), "the PSBT")
        for inp, seq in zip(psbt.inputs, parse_tx(glob[bytes([PSBT_GLOBAL_UNSIGNED_TX])]).sequences):
            inp.sequence = seq
    return psbt


def unsigned_tx(psbt: PSBT) -> Transaction:
    """The unsigned transaction exactly as the PSBT states it (parse the PSBT
    with parse_psbt to keep v0 sequences of 0).

    Not embit's `psbt.tx`: it turns a sequence of 0 into 0xFFFFFFFF and a
    version of 0 into 2, and ignores BIP370's required locktimes, so
    sighashes and final transactions would not be those the signers signed.
    """
    version = 2 if psbt.tx_version is None else psbt.tx_version
    locktime = _v2_locktime(psbt) if psbt.version == 2 else (psbt.locktime or 0)
    vin = []
    for i, inp in enumerate(psbt.inputs):
        sequence = 0xFFFFFFFF if inp.sequence is None else inp.sequence
        # PSBTv2 fields are read whatever their length, or may be missing
        if not (isinstance(inp.txid, bytes) and len(inp.txid) == 32 and _u32(inp.vout) and _u32(sequence)):
            raise PsbtError(f"input {i}: no valid outpoint or sequence in the PSBT")
        vin.append(TransactionInput(inp.txid, inp.vout, sequence=sequence))
    for j, out in enumerate(psbt.outputs):
        if not (isinstance(out.value, int) and 0 <= out.value < 2**63 and out.script_pubkey is not None):
            raise PsbtError(f"output {j}: no valid amount or script in the PSBT")
    if not (_u32(version) and _u32(locktime)):
        raise PsbtError("the PSBT's transaction version or locktime does not fit in 4 bytes")
    return Transaction(version=version, vin=vin, vout=[out.vout for out in psbt.outputs], locktime=locktime)


def _u32(v) -> bool:
    return isinstance(v, int) and 0 <= v < 2**32


def _v2_locktime(psbt: PSBT) -> int:
    """nLockTime of a PSBTv2 as BIP370 determines it."""
    return _required_locktime([inp.unknown.get(bytes([PSBT_IN_REQUIRED_TIME_LOCKTIME])) for inp in psbt.inputs],
                              [inp.unknown.get(bytes([PSBT_IN_REQUIRED_HEIGHT_LOCKTIME])) for inp in psbt.inputs],
                              psbt.locktime or 0)


def _required_locktime(times: list, heights: list, fallback: int) -> int:
    """BIP370: the largest required height if every input that requires a
    locktime accepts a height, else the largest time if every one accepts a
    time; the fallback if none requires one."""
    pairs = [(t, h) for t, h in zip(times, heights) if t is not None or h is not None]
    if not pairs:
        return fallback
    if all(h is not None for _, h in pairs):
        return max(int.from_bytes(h, "little") for _, h in pairs)
    if all(t is not None for t, _ in pairs):
        return max(int.from_bytes(t, "little") for t, _ in pairs)
    raise PsbtError("the inputs' required locktimes cannot be satisfied together")


def spent_output(psbt: PSBT, i: int, maps: Maps | None = None):
    """The output input i spends, from the full previous transaction if given;
    None if the PSBT does not say. With the PSBT's raw maps, the txid of a
    previous transaction without witness data is hashed from its bytes as
    given (embit would serialize it again first)."""
    inp = psbt.inputs[i]
    if inp.non_witness_utxo is not None:
        prev = inp.non_witness_utxo
        raw = maps.inputs[i].get(bytes([PSBT_IN_NON_WITNESS_UTXO])) if maps is not None else None
        if raw is not None and raw[4:6] != b"\x00\x01":  # no witness: the txid is the hash of these bytes
            txid = hashlib.sha256(hashlib.sha256(raw).digest()).digest()[::-1]
        else:
            txid = prev.txid()
        if txid != inp.txid:
            raise PsbtError(f"input {i}: the previous transaction does not match the outpoint")
        if inp.vout >= len(prev.vout):
            raise PsbtError(f"input {i}: the previous transaction has no output {inp.vout}")
        out = prev.vout[inp.vout]
        if inp.witness_utxo is not None and inp.witness_utxo.serialize() != out.serialize():
            raise PsbtError(f"input {i}: witness UTXO and previous transaction disagree")
        return out
    return inp.witness_utxo

"""A PSBT's raw form (BIP174, BIP370, BIP371): its key types, its byte-exact
key-value maps, and the transaction and spent outputs it states.

embit parses the fields. What the host's checks need beyond embit lives here,
in one place: maps kept byte for byte (to compare a PSBT before and after a
signer, and to rewrite one without touching unknown fields), v0 sequences of
0, and BIP370's required locktimes.
"""

import gc
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO

from embit import compact
from embit.psbt import PSBT, read_string
from embit.transaction import Transaction, TransactionInput

from .errors import PsbtError

MAGIC = b"psbt\xff"

# Key types (a key's first byte) the host reads or writes.
PSBT_GLOBAL_UNSIGNED_TX = 0x00
PSBT_GLOBAL_TX_VERSION = 0x02
PSBT_GLOBAL_INPUT_COUNT = 0x04
PSBT_GLOBAL_OUTPUT_COUNT = 0x05
PSBT_GLOBAL_TX_MODIFIABLE = 0x06
MODIFIABLE_INPUTS_OUTPUTS = 0x03  # its Inputs and Outputs Modifiable flags (BIP370)
PSBT_IN_NON_WITNESS_UTXO = 0x00
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
    """The raw maps alone, without embit's objects (cheaper, for a PSBT the
    host made itself): the numbers of inputs and outputs from the global
    unsigned transaction (v0) or BIP370's counts (v2)."""
    if not raw.startswith(MAGIC):
        raise PsbtError(f"{what} does not parse: no PSBT magic")
    s = BytesIO(raw)
    s.read(len(MAGIC))
    try:
        glob = _one_map(s, what)
        if bytes([PSBT_GLOBAL_UNSIGNED_TX]) in glob:
            tx = Transaction.parse(glob[bytes([PSBT_GLOBAL_UNSIGNED_TX])])
            counts = len(tx.vin), len(tx.vout)
        else:
            counts = tuple(compact.from_bytes(glob[bytes([k])]) for k in (PSBT_GLOBAL_INPUT_COUNT,
                                                                          PSBT_GLOBAL_OUTPUT_COUNT))
    except PsbtError:
        raise
    except Exception as e:
        raise PsbtError(f"{what} does not parse: {e}") from None
    return _read_maps(raw, what, *counts)


def _one_map(s, what: str) -> dict:
    m = {}
    while key := read_string(s):
        if key in m:
            raise PsbtError(f"{what} has a duplicated key {key.hex()}")
        m[key] = read_string(s)
    return m


def _read_maps(raw: bytes, what: str, inputs: int, outputs: int) -> Maps:
    s = BytesIO(raw)
    s.read(len(MAGIC))  # checked by the caller
    try:
        maps = Maps(_one_map(s, what), [_one_map(s, what) for _ in range(inputs)],
                    [_one_map(s, what) for _ in range(outputs)])
    except PsbtError:
        raise
    except Exception as e:
        raise PsbtError(f"{what} is truncated: {e}") from None
    if s.read(1):
        raise PsbtError(f"{what} has data after its last output")
    return maps


def parse_psbt(raw: bytes) -> PSBT:
    """PSBT.parse, but each input of a v0 PSBT keeps the sequence its unsigned
    transaction states: embit 0.8 reads the input maps against `psbt.tx`, which
    turns a sequence of 0 into 0xFFFFFFFF. Errors are embit's."""
    psbt = PSBT.parse(raw)
    if psbt.version != 2:
        s = BytesIO(raw)
        s.read(len(MAGIC))
        while key := read_string(s):
            value = read_string(s)
            if key == bytes([PSBT_GLOBAL_UNSIGNED_TX]):
                for inp, vin in zip(psbt.inputs, Transaction.parse(value).vin):
                    inp.sequence = vin.sequence
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
    times, heights, any_lock = [], [], False
    for inp in psbt.inputs:
        t = inp.unknown.get(bytes([PSBT_IN_REQUIRED_TIME_LOCKTIME]))
        h = inp.unknown.get(bytes([PSBT_IN_REQUIRED_HEIGHT_LOCKTIME]))
        if t is None and h is None:
            continue
        any_lock = True
        times.append(None if t is None else int.from_bytes(t, "little"))
        heights.append(None if h is None else int.from_bytes(h, "little"))
    if not any_lock:
        return psbt.locktime or 0
    if all(h is not None for h in heights):
        return max(heights)
    if all(t is not None for t in times):
        return max(times)
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

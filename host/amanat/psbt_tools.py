"""Combine, finalize and extract multisig PSBTs on the host.

Cosigners sign the same PSBT on separate devices; the coordinator merges their
signatures, checks every one against a sighash it computes itself, finalizes
and extracts the transaction, which Bitcoin Core's script interpreter
(py-bitcoinkernel) checks whenever the PSBT says what every input spends.
"""

import os
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from embit.psbt import PSBT
from embit.transaction import Transaction

from . import anti_exfil, kernel
from .errors import AmanatError, AntiExfilFailure, PsbtError, SignatureError
from .finalize import FinalizeError
from .finalize import finalize as finalize_tx
from .psbt_raw import (
    CLEARED_ON_FINALIZE,
    gc_paused,
    PSBT_IN_FINAL_SCRIPTSIG,
    PSBT_IN_FINAL_SCRIPTWITNESS,
    PSBT_IN_PARTIAL_SIG,
    PSBT_GLOBAL_TX_MODIFIABLE,
    is_signature_key,
    parse,
    parse_maps,
    transaction_of,
    spent_output,
    unsigned_tx,
)
from .psbt_verify import SignatureChecker


def _tx(psbt: PSBT, what: str = "the PSBT") -> Transaction:
    """The unsigned transaction as the PSBT states it, its errors naming the PSBT."""
    try:
        return unsigned_tx(psbt)
    except PsbtError as e:
        raise PsbtError(f"{what}: {e.message}") from None


def _unsigned(psbt: PSBT, what: str) -> bytes:
    return bytes([psbt.version or 0]) + _tx(psbt, what).serialize()


MODIFIABLE = bytes([PSBT_GLOBAL_TX_MODIFIABLE])


def combine(raws: list[bytes]) -> bytes:
    """Merge the fields (signatures) of PSBTs of one unsigned transaction.

    A field two PSBTs hold with different values is refused rather than
    chosen: one of them was tampered with or comes from elsewhere."""
    if not raws:
        raise PsbtError("nothing to combine")
    base, merged = parse(raws[0], "PSBT 1")
    for n, raw in enumerate(raws[1:], 2):
        psbt, maps = parse(raw, f"PSBT {n}")
        if _unsigned(psbt, f"PSBT {n}") != _unsigned(base, "PSBT 1"):
            raise PsbtError(f"PSBT {n} is for a different transaction ({_tx(psbt).txid().hex()}) than "
                            f"PSBT 1 ({_tx(base).txid().hex()})")
        sections = [("global", merged.glob, maps.glob)]
        sections += [(f"input {i}", a, b) for i, (a, b) in enumerate(zip(merged.inputs, maps.inputs))]
        sections += [(f"output {i}", a, b) for i, (a, b) in enumerate(zip(merged.outputs, maps.outputs))]
        for where, into, extra in sections:
            for k, v in extra.items():
                if into is merged.glob and k == MODIFIABLE and k in into and len(v) == len(into[k]) == 1:
                    # BIP370: a signer clears flags, never sets them; what one cleared stays cleared
                    into[k] = bytes([into[k][0] & v[0]])
                    continue
                if k in into and into[k] != v:
                    raise PsbtError(f"PSBT {n}: {where} field {k.hex()} differs from the earlier PSBTs")
                into[k] = v
    return anti_exfil.stripped(merged).serialize()  # a signing round's fields go no further


@dataclass
class Verified:
    """What `verify` found in one PSBT, every signature in it valid."""

    inputs: int
    outputs: int
    partial: int  # signature records verified (ECDSA, taproot key and script path)
    final: int  # signatures verified in final scriptSigs/witnesses
    finalized: int  # inputs with a final scriptSig/witness
    unsigned: list  # inputs with no signature at all
    txid: str
    anti_exfil: int = 0  # ECDSA signatures whose nonce was checked against anti-exfil fields in the PSBT


def verify_all_signatures(raw: bytes) -> int:
    """Verify every signature in the PSBT (partial sigs, taproot key and script
    path sigs, and those in final scriptSigs/witnesses) against a sighash
    computed here; return how many there are."""
    v = verify(raw)
    return v.partial + v.final


def verify_many(raws: list[bytes], jobs: int | None = None) -> list:
    """verify() of each PSBT: its Verified, or the AmanatError it failed with."""
    return each_in_processes(verify, raws, jobs)


def each_in_processes(fn, items: list, jobs: int | None = None) -> list:
    """fn(item) of each item: its result, or the AmanatError it raised.
    Several items are shared out to forked processes, one per core; forked,
    so that they inherit what the caller set up (nothing secret crosses a
    pipe). `fn` must be a module-level function."""
    jobs = min(len(items), jobs or os.cpu_count() or 1)
    if jobs <= 1:
        return [_result_or_error(fn, x) for x in items]
    with ProcessPoolExecutor(jobs, mp_context=get_context("fork"), initializer=_worker_start) as pool:
        return list(pool.map(_result_or_error, [fn] * len(items), items, chunksize=1))


def _worker_start():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the CLI's handler: the pool ends its workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _result_or_error(fn, item):
    try:
        return fn(item)
    except AmanatError as e:
        return e


def verify(raw: bytes) -> Verified:
    """Verify every signature of the PSBT; raise SignatureError (or PsbtError
    for a PSBT that cannot be read) naming the first input that fails."""
    with gc_paused():
        return _verify(raw)


def _verify(raw: bytes) -> Verified:
    maps = parse_maps(raw)
    transaction_of(maps)  # a PSBT stating no valid transaction is a PsbtError, not a bad signature
    try:
        checker = SignatureChecker(maps)
    except SignatureError:
        raise
    except Exception as e:
        raise PsbtError(f"the PSBT cannot be checked: {type(e).__name__}: {e}") from None
    partial = final = finalized = nonces = 0
    unsigned = []
    for i, m in enumerate(maps.inputs):
        found = checker.check_final(i)
        finalized += found is not None
        final += found or 0
        records = 0
        for key, value in m.items():
            if is_signature_key(key):
                checker.check(i, key, value)
                records += 1
                nonces += _anti_exfil_checked(checker, i, m, key, value)
        partial += records
        if not records and not found:
            unsigned.append(i)
    return Verified(len(maps.inputs), len(maps.outputs), partial, final, finalized, unsigned,
                    checker.tx.txid().hex(), nonces)


def _anti_exfil_checked(checker, i: int, m: dict, key: bytes, value: bytes) -> int:
    """1 if the ECDSA signature record (key, value) of input i has its
    anti-exfil opening and entropy beside it and its nonce holds them
    (AntiExfilFailure if not), 0 if the PSBT carries no such round."""
    if key[0] != PSBT_IN_PARTIAL_SIG:
        return 0
    sec = key[1:]
    opening = m.get(anti_exfil.field(anti_exfil.SIGNER_OPENING, sec))
    rho = m.get(anti_exfil.field(anti_exfil.HOST_ENTROPY, sec))
    if opening is None or rho is None:
        return 0
    try:
        anti_exfil.check(sec, checker.ecdsa_digest(i, sec, value[-1]), rho, opening, value[:-1])
    except AntiExfilFailure as e:
        raise AntiExfilFailure(f"input {i}, key {sec.hex()}: {e.reason}") from None
    return 1


@dataclass
class Final:
    psbt: bytes  # the finalized PSBT (BIP174 Finalizer role)
    tx: bytes
    signatures: int  # verified
    checked: bool  # libbitcoinkernel ran every input's script


def finalize(raw: bytes) -> Final:
    """Verify every signature, finalize, and check the result when the PSBT
    says what every input spends."""
    count = verify_all_signatures(raw)
    psbt, maps = parse(raw)
    try:
        tx = finalize_tx(psbt)
    except FinalizeError as e:
        raise PsbtError(f"cannot finalize: {e}") from None
    parsed = Transaction.parse(tx)
    for inp, m in zip(parsed.vin, maps.inputs):
        for k in [k for k in m if k[0] in CLEARED_ON_FINALIZE or k.startswith(anti_exfil.PREFIX)]:
            del m[k]
        if inp.script_sig.data:
            m[bytes([PSBT_IN_FINAL_SCRIPTSIG])] = inp.script_sig.data
        if inp.witness.items:
            m[bytes([PSBT_IN_FINAL_SCRIPTWITNESS])] = inp.witness.serialize()
    final = maps.serialize()
    return Final(final, tx, count, _check(psbt, tx, {}))


@dataclass
class Extracted:
    tx: bytes
    txid: str
    checked: bool
    unknown_inputs: list  # inputs whose spent output nobody gave


def extract(raw: bytes, previous: list[bytes] = ()) -> Extracted:
    """The network transaction of a finalized PSBT. `previous` are raw previous
    transactions, for inputs whose PSBT does not say what they spend."""
    psbt, _ = parse(raw)
    tx = _tx(psbt)
    for i, (inp, pin) in enumerate(zip(tx.vin, psbt.inputs)):
        if not pin.final_scriptsig and not pin.final_scriptwitness:
            raise PsbtError(f"input {i} is not finalized: finalize the PSBT first")
        if pin.final_scriptsig:
            inp.script_sig = pin.final_scriptsig
        if pin.final_scriptwitness:
            inp.witness = pin.final_scriptwitness
    out = tx.serialize()
    try:
        prevs = {t.txid(): t for t in map(Transaction.parse, previous)}
    except Exception as e:
        raise PsbtError(f"a previous transaction does not parse: {e}") from None
    unknown = [i for i in range(len(tx.vin)) if _spent(psbt, i, prevs) is None]
    checked = _check(psbt, out, prevs) if not unknown else False
    return Extracted(out, tx.txid().hex(), checked, unknown)


def _spent(psbt: PSBT, i: int, prevs: dict):
    out = spent_output(psbt, i)
    if out is None:
        prev = prevs.get(psbt.inputs[i].txid)
        if prev is not None and psbt.inputs[i].vout < len(prev.vout):
            out = prev.vout[psbt.inputs[i].vout]
    return out


def _check(psbt: PSBT, tx: bytes, prevs: dict) -> bool:
    """Run every input's script in libbitcoinkernel; False if a spent output is unknown."""
    spent = [_spent(psbt, i, prevs) for i in range(len(psbt.inputs))]
    if any(o is None for o in spent):
        return False
    try:
        kernel.verify_transaction(tx, [(o.script_pubkey.data, o.value) for o in spent])
    except kernel.ScriptCheckError as e:
        raise SignatureError(f"the finalized transaction does not verify: {e}") from None
    return True

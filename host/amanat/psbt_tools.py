"""Combine, finalize and extract multisig PSBTs on the host.

Cosigners sign the same PSBT on separate devices; the coordinator merges their
signatures, checks every one against a sighash it computes itself, finalizes
and extracts the transaction, which Bitcoin Core's script interpreter
(py-bitcoinkernel) checks whenever the PSBT says what every input spends.
"""

from dataclasses import dataclass

from embit.finalizer import parse_multisig
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import SIGHASH, Transaction

from . import kernel
from .errors import PsbtError, SignatureError
from .finalize import FinalizeError
from .finalize import finalize as finalize_tx
from .psbt_raw import (
    CLEARED_ON_FINALIZE,
    PSBT_IN_FINAL_SCRIPTSIG,
    PSBT_IN_FINAL_SCRIPTWITNESS,
    PSBT_GLOBAL_TX_MODIFIABLE,
    is_signature_key,
    parse,
    spent_output,
    unsigned_tx,
)
from .psbt_verify import SignatureChecker, check_sighash_policy


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
    return merged.serialize()


def verify_all_signatures(raw: bytes) -> int:
    """Verify every signature in the PSBT (partial sigs, taproot key and script
    path sigs) against a sighash computed here; return how many there are.
    Signatures already in final scriptSigs/witnesses are held to the same
    sighash rule (libbitcoinkernel verifies them once the transaction is built)."""
    psbt, maps = parse(raw)
    _tx(psbt)  # a PSBT stating no valid transaction is a PsbtError, not a bad signature
    try:
        checker = SignatureChecker(psbt)
    except SignatureError:
        raise
    except Exception as e:
        raise PsbtError(f"the PSBT cannot be checked: {type(e).__name__}: {e}") from None
    count = 0
    for i, m in enumerate(maps.inputs):
        _check_final_sighashes(i, psbt.inputs[i], checker.spent[i])
        for key, value in m.items():
            if is_signature_key(key):
                checker.check(i, key, value)
                count += 1
    return count


# What a final scriptSig/witness form may spend: {spent output type: forms}
FINAL_FORMS = {"p2pkh": {"p2pkh"}, "p2wpkh": {"p2wpkh"}, "p2wsh": {"p2wsh"}, "p2tr": {"p2tr"},
               "p2sh": {"p2sh", "sh-wpkh", "sh-wsh"}}


def _check_final_sighashes(i: int, inp, spent) -> None:
    """Hold the signatures of input i's final fields to the sighash rule of
    partial signatures; refuse final fields that are not understood here,
    rather than pass them on unchecked."""
    if not (inp.final_scriptsig or inp.final_scriptwitness):
        return
    try:
        form, sigs = _final_form(inp)
    except Exception:
        form, sigs = None, []
    if form is None:
        raise PsbtError(f"input {i}: its final scriptSig/witness is not a form this host can check "
                        "(single-sig, CHECKMULTISIG or taproot)")
    kind = spent.script_pubkey.script_type() if spent is not None else None
    if kind is not None and form not in FINAL_FORMS.get(kind, ()):
        raise PsbtError(f"input {i}: its final scriptSig/witness ({form}) does not fit the {kind} output it spends")
    for sig, schnorr in sigs:
        if schnorr:  # 64 bytes: DEFAULT; 65: the last byte, never 0
            ok = len(sig) == 64 or len(sig) == 65 and sig[64] != SIGHASH.DEFAULT
        else:  # DER, then the sighash byte
            ok = len(sig) >= 9
        if not ok:
            raise PsbtError(f"input {i}: its final scriptSig/witness holds a malformed signature")
        sighash = SIGHASH.DEFAULT if len(sig) == 64 and schnorr else sig[-1]
        check_sighash_policy(i, sighash, inp.sighash_type, schnorr)


def _final_form(inp):
    """(form, [(signature, is Schnorr)]) of an input's final scriptSig and
    witness; form is None if they are not one of the forms finalizers make."""
    pushed = _pushes(inp.final_scriptsig.data) if inp.final_scriptsig else []
    wit = inp.final_scriptwitness.items if inp.final_scriptwitness else []
    if pushed is None:
        return None, []
    if wit:
        if len(pushed) > 1:  # P2SH-wrapped segwit: the scriptSig only pushes the redeem script
            return None, []
        wrapped = bool(pushed)
        if len(wit) == 2 and _is_pubkey(wit[1]):
            return ("sh-wpkh" if wrapped else "p2wpkh"), [(wit[0], False)]
        if len(wit) >= 3 and wit[0] == b"" and _is_multisig(wit[-1]):
            return ("sh-wsh" if wrapped else "p2wsh"), [(s, False) for s in wit[1:-1]]
        if wrapped:
            return None, []
        if len(wit) == 1:  # taproot key path
            return "p2tr", [(wit[0], True)]
        if len(wit) >= 2 and _is_control_block(wit[-1]):  # script path: args, leaf, control block
            return "p2tr", [(s, True) for s in wit[:-2] if s]  # empty: a key that did not sign
        return None, []
    if len(pushed) == 2 and _is_pubkey(pushed[1]):
        return "p2pkh", [(pushed[0], False)]
    if len(pushed) >= 3 and pushed[0] == b"" and _is_multisig(pushed[-1]):
        return "p2sh", [(s, False) for s in pushed[1:-1]]
    return None, []


def _pushes(data: bytes):
    """The items a push-only script pushes; None if it does anything else."""
    items, n = [], 0
    while n < len(data):
        op = data[n]
        n += 1
        if op <= 0x4B:
            size = op
        elif op in (0x4C, 0x4D, 0x4E):
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            size = int.from_bytes(data[n : n + width], "little")
            n += width
        else:
            return None
        if n + size > len(data):
            return None
        items.append(data[n : n + size])
        n += size
    return items


def _is_pubkey(b: bytes) -> bool:
    return len(b) == 33 and b[0] in (2, 3) or len(b) == 65 and b[0] == 4


def _is_multisig(b: bytes) -> bool:
    try:
        parse_multisig(Script(b))
        return True
    except Exception:
        return False


def _is_control_block(b: bytes) -> bool:
    return len(b) >= 33 and (len(b) - 33) % 32 == 0 and b[0] & 0xFE == 0xC0


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
        for k in [k for k in m if k[0] in CLEARED_ON_FINALIZE]:
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

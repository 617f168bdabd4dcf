"""Finalize signed PSBTs into a network transaction.

Single-sig: P2PKH, P2SH-P2WPKH, P2WPKH and P2TR key path (the signature in
PSBT_IN_TAP_KEY_SIG, 0x13, as BIP371 asks), through embit's finalizer.

Multisig, once enough signatures are there:
- P2WSH, P2SH-P2WSH and P2SH (legacy) over a CHECKMULTISIG script: OP_0 (the
  CHECKMULTISIG extra pop), then the signatures in the order of the script's
  keys, then the script;
- P2TR script path over a multi_a leaf: one stack item per key of the leaf in
  reverse order (the script checks the first key against the top of the
  stack), a signature or empty, then the leaf script and its control block.
"""

from embit.finalizer import finalize_psbt, parse_multisig
from embit.psbt import PSBT
from embit.script import Script, Witness

from .errors import PsbtError
from .psbt_raw import PSBT_IN_TAP_KEY_SIG, unsigned_tx
from .taproot import leaf_hash


class FinalizeError(Exception):
    pass


def finalize(psbt: PSBT) -> bytes:
    """Return the serialized final transaction, or raise FinalizeError.
    (Read a v0 PSBT with psbt_raw.parse_psbt: embit's parse loses sequences of 0.)"""
    try:
        unsigned = unsigned_tx(psbt)
    except PsbtError as e:
        raise FinalizeError(e.message) from None
    for i, inp in enumerate(psbt.inputs):
        try:
            _finalize_input(i, inp)
        except FinalizeError:
            raise
        except Exception as e:  # a malformed PSBT: one clear error, not a traceback
            raise FinalizeError(f"input {i}: {type(e).__name__}: {e}") from None
    try:
        tx = finalize_psbt(psbt)
    except Exception as e:
        raise FinalizeError(f"cannot build the final transaction: {type(e).__name__}: {e}") from None
    if tx is None:
        raise FinalizeError("PSBT is not fully signed")
    # embit builds it from `psbt.tx` (sequence 0 read as 0xFFFFFFFF, no BIP370
    # required locktime): make it the transaction the signatures commit to.
    tx.version, tx.locktime = unsigned.version, unsigned.locktime
    for vin, ref in zip(tx.vin, unsigned.vin):
        vin.sequence = ref.sequence
    return tx.serialize()


def _finalize_input(i: int, inp) -> None:
    if inp.final_scriptwitness or inp.final_scriptsig:
        return
    if inp.utxo is None:
        raise FinalizeError(f"input {i}: the PSBT does not say what it spends (no UTXO)")
    if inp.is_taproot:
        sig = inp.unknown.get(bytes([PSBT_IN_TAP_KEY_SIG]))
        if sig is not None:
            inp.final_scriptwitness = Witness([sig])
        elif inp.taproot_sigs:
            _finalize_multi_a(i, inp)
        else:
            raise FinalizeError(f"input {i}: no taproot signature")
    elif not inp.partial_sigs:
        raise FinalizeError(f"input {i}: not signed")
    elif _multisig_script(inp) is not None:
        _finalize_multisig(i, inp)


def _push(data: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b"\x00"
    if n < 0x4C:
        return bytes([n]) + data
    if n <= 0xFF:
        return b"\x4c" + bytes([n]) + data
    return b"\x4d" + n.to_bytes(2, "little") + data


def _multisig_script(inp):
    """The CHECKMULTISIG script of a wsh, sh-wsh or bare sh input, or None."""
    if inp.witness_script is not None:
        return inp.witness_script
    rs = inp.redeem_script
    if rs is not None and rs.script_type() is None and rs.data[-1:] == b"\xae":
        return rs
    return None


def _finalize_multisig(i: int, inp) -> None:
    ms = _multisig_script(inp)
    try:
        m, pubs = parse_multisig(ms)
    except Exception as e:
        raise FinalizeError(f"input {i}: not a multisig script: {e}") from None
    sigs = [inp.partial_sigs[p] for p in pubs if p in inp.partial_sigs][:m]
    if len(sigs) < m:
        raise FinalizeError(f"input {i}: {len(sigs)} of {m} signatures")
    if inp.witness_script is not None:
        inp.final_scriptwitness = Witness([b""] + sigs + [ms.data])
        if inp.redeem_script is not None:  # sh-wsh: the scriptSig pushes the witness program
            inp.final_scriptsig = Script(_push(inp.redeem_script.data))
    else:
        inp.final_scriptsig = Script(b"\x00" + b"".join(_push(s) for s in sigs) + _push(ms.data))


def multi_a_keys(leaf: bytes):
    """(threshold, x-only keys) of a multi_a leaf script, or None."""
    keys, n = [], 0
    while n + 34 <= len(leaf) and leaf[n] == 0x20 and leaf[n + 33] == (0xAC if not keys else 0xBA):
        keys.append(leaf[n + 1 : n + 33])
        n += 34
    rest = leaf[n:]
    if not keys or len(rest) != 2 or rest[1] != 0x9C or not 0x51 <= rest[0] <= 0x60:
        return None
    return rest[0] - 0x50, keys


def _finalize_multi_a(i: int, inp) -> None:
    sigs = {(pub.xonly(), leaf): sig for (pub, leaf), sig in inp.taproot_sigs.items()}
    for control, value in inp.taproot_scripts.items():
        if not value:
            raise FinalizeError(f"input {i}: an empty taproot leaf script field")
        leaf, version = value[:-1], value[-1]
        parsed = multi_a_keys(leaf)
        if parsed is None:
            continue
        k, keys = parsed
        h = leaf_hash(leaf, version)
        items = []
        for key in keys:
            sig = sigs.get((key, h))
            # exactly k signatures: NUMEQUAL fails on more
            items.append(sig if sig is not None and len([x for x in items if x]) < k else b"")
        if len([x for x in items if x]) == k:
            inp.final_scriptwitness = Witness(list(reversed(items)) + [leaf, control])
            return
    raise FinalizeError(f"input {i}: not enough taproot script-path signatures for any leaf")


def signatures_present(inp) -> tuple[int, int]:
    """(signatures present, signatures the input needs) of one PSBT input:
    1 of 1 single-sig, m of a CHECKMULTISIG script, k of the best multi_a
    leaf; a finalized input counts as complete."""
    if inp.final_scriptwitness or inp.final_scriptsig:
        return (1, 1)
    if inp.is_taproot:
        if inp.unknown.get(bytes([PSBT_IN_TAP_KEY_SIG])) is not None:
            return (1, 1)
        best = None
        sigs = {(pub.xonly(), leaf) for (pub, leaf) in inp.taproot_sigs}
        for value in inp.taproot_scripts.values():
            parsed = multi_a_keys(value[:-1]) if value else None
            if parsed is None:
                continue
            k, keys = parsed
            h = leaf_hash(value[:-1], value[-1])
            have = min(k, sum((key, h) in sigs for key in keys))
            if best is None or k - have < best[1] - best[0]:
                best = (have, k)
        return best or (0, 1)
    ms = _multisig_script(inp)
    if ms is not None:
        try:
            m, pubs = parse_multisig(ms)
        except Exception:
            return (len(inp.partial_sigs), 1)
        return (min(m, sum(p in inp.partial_sigs for p in pubs)), m)
    return (min(1, len(inp.partial_sigs)), 1)

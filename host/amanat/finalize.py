"""Finalize signed single-sig PSBTs into a network transaction.

Handles what the device signs today: P2PKH, P2SH-P2WPKH, P2WPKH and P2TR key
path (the signature in PSBT_IN_TAP_KEY_SIG, 0x13, as BIP371 asks).
"""

from embit.finalizer import finalize_psbt
from embit.psbt import PSBT
from embit.script import Witness

PSBT_IN_TAP_KEY_SIG = b"\x13"


class FinalizeError(Exception):
    pass


def finalize(psbt: PSBT) -> bytes:
    """Return the serialized final transaction, or raise FinalizeError."""
    for i, inp in enumerate(psbt.inputs):
        if inp.final_scriptwitness or inp.final_scriptsig:
            continue
        if inp.is_taproot:
            sig = inp.unknown.get(PSBT_IN_TAP_KEY_SIG)
            if sig is None:
                raise FinalizeError(f"input {i}: no taproot key-path signature")
            inp.final_scriptwitness = Witness([sig])
        elif not inp.partial_sigs:
            raise FinalizeError(f"input {i}: not signed")
    tx = finalize_psbt(psbt)
    if tx is None:
        raise FinalizeError("PSBT is not fully signed")
    return tx.serialize()

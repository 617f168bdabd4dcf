"""Sign the inputs of a PSBT that belong to the keystore.

embit 0.8 puts a taproot key-path signature straight into the final witness;
BIP371 wants it in PSBT_IN_TAP_KEY_SIG (0x13) with finalizing left to the
finalizer, so the signature is moved there after signing.
"""

from embit.psbt import PSBT

PSBT_IN_TAP_KEY_SIG = b"\x13"


class SigningError(Exception):
    pass


def sign_psbt(raw, keystore):
    """Return (signed PSBT bytes, number of signatures added)."""
    try:
        psbt = PSBT.parse(raw)
    except Exception as e:
        raise SigningError("malformed PSBT: %s" % e)
    before = [inp.final_scriptwitness for inp in psbt.inputs]
    count = psbt.sign_with(keystore.root)
    for inp, old in zip(psbt.inputs, before):
        if inp.is_taproot and inp.final_scriptwitness and not old:
            # copy: embit may share one default dict between scopes
            inp.unknown = dict(inp.unknown)
            inp.unknown[PSBT_IN_TAP_KEY_SIG] = inp.final_scriptwitness.items[0]
            inp.final_scriptwitness = None
    if count == 0:
        raise SigningError("no input of this PSBT belongs to this device")
    return psbt.serialize(), count

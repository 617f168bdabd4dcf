"""Check finished transactions with Bitcoin Core's own script interpreter.

Signatures made by the device are never trusted only because the code that made
them says so: libbitcoinkernel (py-bitcoinkernel) runs every input's scripts
with all consensus flags, taproot included.
"""

import pbk


class ScriptCheckError(Exception):
    """An input of a transaction does not satisfy the script it spends."""


def verify_transaction(tx: bytes, spent_outputs: list[tuple[bytes, int]]) -> None:
    """Raise ScriptCheckError unless every input spends its output validly.

    spent_outputs[i] is (scriptPubKey, amount in sats) of the output input i spends.
    """
    ktx = pbk.Transaction(tx)
    outs = [pbk.TransactionOutput(pbk.ScriptPubkey(s), a) for s, a in spent_outputs]
    if len(outs) != len(ktx.inputs):
        raise ScriptCheckError(
            f"{len(outs)} spent outputs given for {len(ktx.inputs)} inputs"
        )
    pre = pbk.script.PrecomputedTransactionData(ktx, outs)
    flags = pbk.ScriptVerificationFlags.ALL
    for i, (script, amount) in enumerate(spent_outputs):
        try:
            ok = pbk.ScriptPubkey(script).verify(amount, ktx, pre, i, flags)
        except pbk.ScriptVerifyException as e:
            raise ScriptCheckError(f"input {i}: {e}") from None
        if not ok:
            raise ScriptCheckError(f"input {i}: script verification failed")

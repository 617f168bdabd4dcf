"""A BDK (bdkpython 3.1.1) wallet as another coordinator would run it.

Multisig PSBTs made by a wallet that is not ours show what the device and the
host tools meet in the field. Everything stays offline: the wallet is funded
by applying a made-up unconfirmed transaction that pays its addresses.

BDK 3.1.1 (rust-miniscript) does not parse `sortedmulti_a`: taproot wallets
here use `multi_a`.
"""

import re

import bdkpython as bdk
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

NETWORK = bdk.Network.REGTEST
NUMS = "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0"


def branches(descriptor: str) -> tuple[str, str]:
    """(receive, change) single-path descriptors of a `/<0;1>/*` (or `/**`) one."""
    body = descriptor.split("#")[0].replace("/**", "/<0;1>/*")
    if "/<0;1>/*" not in body:
        raise ValueError("not a /<0;1>/* descriptor")
    return body.replace("/<0;1>/*", "/0/*"), body.replace("/<0;1>/*", "/1/*")


def make_wallet(receive: str, change: str | None = None) -> bdk.Wallet:
    """A watch-only regtest wallet; one multipath descriptor or a receive/change pair."""
    if change is None:
        receive, change = branches(receive)
    kind = bdk.NetworkKind.TEST
    return bdk.Wallet(bdk.Descriptor(receive, kind), bdk.Descriptor(change, kind), NETWORK,
                      bdk.Persister.new_in_memory())


def address(wallet: bdk.Wallet, index: int, change: bool = False) -> str:
    keychain = bdk.KeychainKind.INTERNAL if change else bdk.KeychainKind.EXTERNAL
    return str(wallet.peek_address(keychain, index).address)


def fund(wallet: bdk.Wallet, amounts: list[int], tag: int = 0) -> bytes:
    """Pay `amounts` to the wallet's first receive addresses in one unconfirmed
    transaction (its input is made up); return that transaction."""
    vout = []
    for amount in amounts:
        info = wallet.reveal_next_address(bdk.KeychainKind.EXTERNAL)
        vout.append(TransactionOutput(amount, Script(info.address.script_pubkey().to_bytes())))
    vin = [TransactionInput((tag + 1).to_bytes(32, "little"), 0)]
    raw = Transaction(version=2, vin=vin, vout=vout, locktime=0).serialize()
    wallet.apply_unconfirmed_txs([bdk.UnconfirmedTx(tx=bdk.Transaction(raw), last_seen=1)])
    return raw


def build_psbt(wallet: bdk.Wallet, pay_to: str, amount: int, fee_rate: int = 2) -> bytes:
    """A PSBT paying `amount` to `pay_to`, with change back to the wallet."""
    script = bdk.Address(pay_to, NETWORK).script_pubkey()
    psbt = (bdk.TxBuilder().add_recipient(script, bdk.Amount.from_sat(amount))
            .fee_rate(bdk.FeeRate.from_sat_per_vb(fee_rate)).finish(wallet))
    return PSBT.from_base64(psbt.serialize()).serialize()


def finalize(wallet: bdk.Wallet, signed: bytes) -> bytes:
    """BDK's finalizer on a signed PSBT; the finalized PSBT."""
    psbt = bdk.Psbt(PSBT.parse(signed).to_base64())
    if not wallet.finalize_psbt(psbt):
        raise ValueError("BDK could not finalize the PSBT")
    return PSBT.from_base64(psbt.serialize()).serialize()


def extract(final: bytes) -> bytes:
    tx = bdk.Psbt(PSBT.parse(final).to_base64()).extract_tx()
    return tx.serialize()


def spent_outputs(raw_psbt: bytes) -> list[tuple[bytes, int]]:
    """(scriptPubKey, amount) of every input, for py-bitcoinkernel."""
    psbt = PSBT.parse(raw_psbt)
    return [(inp.utxo.script_pubkey.data, inp.utxo.value) for inp in psbt.inputs]


def multisig(template: str, keys: list[str]) -> str:
    """Fill `@i` in a template such as `wsh(sortedmulti(2,@0,@1,@2))` with
    `keys[i]/<0;1>/*`."""
    return re.sub(r"@([0-9]+)", lambda m: keys[int(m.group(1))] + "/<0;1>/*", template)

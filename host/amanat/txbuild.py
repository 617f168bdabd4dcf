"""Build PSBTs that spend from a single-signature BIP44/49/84/86 account.

Used by the demo, the benchmarks and the tests to make realistic PSBTs for the
device: a funding transaction paying the account's addresses, and a PSBT that
spends some of those outputs with all the fields a signer needs (full previous
transaction for non-taproot inputs, BIP32 and taproot derivations, redeem
scripts). No network is needed: the funding transaction has a made-up input.
"""

from dataclasses import dataclass

from embit import bip32, ec, script
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

# script type -> BIP44-style purpose
PURPOSE = {"p2pkh": 44, "p2sh-p2wpkh": 49, "p2wpkh": 84, "p2tr": 86}
HARDENED = 0x80000000


def account_path(kind: str, network: str = "main", account: int = 0) -> str:
    coin = 0 if network == "main" else 1
    return f"m/{PURPOSE[kind]}h/{coin}h/{account}h"


def _path_ints(path: str) -> list[int]:
    out = []
    for part in path.split("/")[1:]:
        hard = part[-1] in "h'"
        out.append(int(part.rstrip("h'")) + (HARDENED if hard else 0))
    return out


def script_for(kind: str, pub: ec.PublicKey) -> tuple[Script, Script | None]:
    """(scriptPubKey, redeem script or None) of a single-key output."""
    if kind == "p2pkh":
        return script.p2pkh(pub), None
    if kind == "p2wpkh":
        return script.p2wpkh(pub), None
    if kind == "p2sh-p2wpkh":
        redeem = script.p2wpkh(pub)
        return script.p2sh(redeem), redeem
    if kind == "p2tr":
        return script.p2tr(pub), None
    raise ValueError(f"unknown script type: {kind}")


@dataclass
class Account:
    """A single-sig account: its xpub, where it sits and what scripts it makes."""

    kind: str
    xpub: bip32.HDKey
    fingerprint: bytes
    path: str

    def key(self, change: int, index: int) -> tuple[ec.PublicKey, list[int]]:
        pub = self.xpub.derive([change, index]).key
        return pub, _path_ints(self.path) + [change, index]

    def output(self, change: int, index: int):
        pub, _ = self.key(change, index)
        return script_for(self.kind, pub)[0]

    def describe_output(self, psbt_out, change: int, index: int) -> None:
        """Add the derivation fields that let a signer recognise change."""
        pub, der = self.key(change, index)
        if self.kind == "p2tr":
            psbt_out.taproot_bip32_derivations[pub] = ([], DerivationPath(self.fingerprint, der))
            psbt_out.taproot_internal_key = pub
        else:
            psbt_out.bip32_derivations[pub] = DerivationPath(self.fingerprint, der)
            redeem = script_for(self.kind, pub)[1]
            if redeem is not None:
                psbt_out.redeem_script = redeem


def funding_tx(outputs: list[tuple[Script, int]], tag: int = 0) -> Transaction:
    """A transaction paying `outputs`, spending a made-up outpoint (tag varies it)."""
    vin = [TransactionInput(tag.to_bytes(32, "little"), 0, sequence=0xFFFFFFFD)]
    vout = [TransactionOutput(amount, sc) for sc, amount in outputs]
    return Transaction(version=2, vin=vin, vout=vout, locktime=0)


@dataclass
class Built:
    psbt: PSBT
    spent: list[tuple[bytes, int]]  # (scriptPubKey, amount) per input


def build_spend(
    coins: list[tuple[Account, int, int]],
    pay_to: Script,
    pay_amount: int,
    fee: int,
    change: tuple[Account, int] | None = None,
    tag: int = 1,
    version: int = 0,
) -> Built:
    """Spend one coin of `amount` per (account, index, amount) in `coins`.

    Each coin gets its own funding transaction. What is left after the payment
    and the fee goes to `change` = (account, index) on the change chain.
    `version` is the PSBT version: 0 (BIP174) or 2 (BIP370).
    """
    if version not in (0, 2):
        raise ValueError(f"unsupported PSBT version: {version}")
    funding = [
        funding_tx([(acct.output(0, idx), amount)], tag=tag + n)
        for n, (acct, idx, amount) in enumerate(coins)
    ]
    vin = [TransactionInput(f.txid(), 0, sequence=0xFFFFFFFD) for f in funding]
    total = sum(amount for _, _, amount in coins)
    vout = [TransactionOutput(pay_amount, pay_to)]
    rest = total - pay_amount - fee
    if rest < 0:
        raise ValueError("coins do not cover the payment and the fee")
    if change and rest:
        acct, idx = change
        vout.append(TransactionOutput(rest, acct.output(1, idx)))
    tx = Transaction(version=2, vin=vin, vout=vout, locktime=0)
    # a fresh dict: embit's default `unknown` is shared between instances
    psbt = PSBT(tx, {}, version=2 if version == 2 else None)
    spent = []
    for inp, f, (acct, idx, amount) in zip(psbt.inputs, funding, coins):
        inp.unknown = {}
        utxo = f.vout[0]
        inp.witness_utxo = utxo
        spent.append((utxo.script_pubkey.data, amount))
        pub, der = acct.key(0, idx)
        origin = DerivationPath(acct.fingerprint, der)
        if acct.kind == "p2tr":
            inp.taproot_bip32_derivations[pub] = ([], origin)
            inp.taproot_internal_key = pub
        else:
            # every segwit v0 and legacy input carries the full previous
            # transaction: the device refuses them without it
            inp.non_witness_utxo = f
            if acct.kind == "p2pkh":
                inp.witness_utxo = None
            inp.bip32_derivations[pub] = origin
            redeem = script_for(acct.kind, pub)[1]
            if redeem is not None:
                inp.redeem_script = redeem
    for out in psbt.outputs:
        out.unknown = {}
    if change and rest:
        change[0].describe_output(psbt.outputs[1], 1, change[1])
    return Built(psbt, spent)

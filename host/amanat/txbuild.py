"""Build PSBTs that spend from single-signature BIP44/49/84/86 accounts and
from multisig wallets.

Used by the demo, the benchmarks and the tests to make realistic PSBTs for the
device: a funding transaction paying the account's addresses, and a PSBT that
spends some of those outputs with all the fields a signer needs (full previous
transaction for non-taproot inputs, BIP32 and taproot derivations, redeem and
witness scripts, taproot leaf scripts). No network is needed: the funding
transaction has a made-up input.

Multisig scripts are computed here from the cosigners' xpubs (embit and
libsecp256k1 on CPython), never by the firmware's code, so that tests
cross-check the device.
"""

import hashlib
from dataclasses import dataclass

from embit import bip32, ec, hashes, script
from embit.networks import NETWORKS
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from .descriptors import Key, coin_type, parse_path
from .psbt_raw import PSBT_OUT_TAP_TREE
from .taproot import LEAF_VERSION, leaf_hash, output_key

# script type -> BIP44-style purpose
PURPOSE = {"p2pkh": 44, "p2sh-p2wpkh": 49, "p2wpkh": 84, "p2tr": 86}


def account_path(kind: str, network: str = "main", account: int = 0) -> str:
    return f"m/{PURPOSE[kind]}h/{coin_type(network)}h/{account}h"


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
        return pub, parse_path(self.path) + [change, index]

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

    def describe_input(self, inp, funding: Transaction, change: int, index: int) -> None:
        """Fields a signer needs to spend output 0 of `funding`."""
        pub, der = self.key(change, index)
        origin = DerivationPath(self.fingerprint, der)
        if self.kind == "p2tr":
            inp.taproot_bip32_derivations[pub] = ([], origin)
            inp.taproot_internal_key = pub
            return
        # every segwit v0 and legacy input carries the full previous
        # transaction: the device refuses them without it
        inp.non_witness_utxo = funding
        if self.kind == "p2pkh":
            inp.witness_utxo = None
        inp.bip32_derivations[pub] = origin
        redeem = script_for(self.kind, pub)[1]
        if redeem is not None:
            inp.redeem_script = redeem


def funding_tx(outputs: list[tuple[Script, int]], tag: int = 0) -> Transaction:
    """A transaction paying `outputs`, spending a made-up outpoint (tag varies it)."""
    vin = [TransactionInput(tag.to_bytes(32, "little"), 0, sequence=0xFFFFFFFD)]
    vout = [TransactionOutput(amount, sc) for sc, amount in outputs]
    return Transaction(version=2, vin=vin, vout=vout, locktime=0)


# --- multisig wallets

# BIP341's provably unspendable internal key: a taproot wallet with it has no key path.
NUMS = bytes.fromhex("50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")
MULTISIG_KINDS = ("wsh", "sh-wsh", "sh", "tr")


def _push(data: bytes) -> bytes:
    n = len(data)
    if n < 0x4C:
        return bytes([n]) + data
    if n <= 0xFF:
        return b"\x4c" + bytes([n]) + data
    return b"\x4d" + n.to_bytes(2, "little") + data


def _small_int(n: int) -> bytes:
    if not 1 <= n <= 16:
        raise ValueError(f"threshold or key count {n} out of range")
    return bytes([0x50 + n])


@dataclass
class Cosigner:
    """One key of a multisig wallet: fingerprint of its master, origin path of
    its account xpub, the xpub; addresses use xpub/<change>/<index>."""

    fingerprint: bytes
    origin: list[int]
    xpub: bip32.HDKey

    def pub(self, change: int, index: int) -> ec.PublicKey:
        return self.xpub.derive([change, index]).key

    def path(self, change: int, index: int) -> list[int]:
        return list(self.origin) + [change, index]

    def text(self) -> str:
        return Key(self.fingerprint, tuple(self.origin), self.xpub.to_base58(), (), (0, 1), True).text()


@dataclass
class MultisigScripts:
    """Everything about one address of a wallet. keys: in script order."""

    script_pubkey: Script
    keys: list
    redeem_script: Script | None = None
    witness_script: Script | None = None
    leaf_script: Script | None = None
    leaf_hash: bytes | None = None
    internal_key: bytes | None = None  # x-only
    control_block: bytes | None = None


@dataclass
class Multisig:
    """A k-of-n wallet: wsh, sh-wsh and sh use (sorted)multi, tr uses
    (sorted)multi_a in its only leaf. `internal` (tr only) is an x-only key
    (NUMS by default) or a Cosigner (or tuple) derived like the others."""

    kind: str
    threshold: int
    sorted: bool
    cosigners: list
    internal: object = None

    def __post_init__(self):
        if self.kind not in MULTISIG_KINDS:
            raise ValueError(f"unknown multisig kind: {self.kind}")
        self.cosigners = [c if isinstance(c, Cosigner) else Cosigner(*c) for c in self.cosigners]
        if self.kind == "tr":
            if self.internal is None:
                self.internal = NUMS
            elif isinstance(self.internal, tuple):
                self.internal = Cosigner(*self.internal)
        elif self.internal is not None:
            raise ValueError("only a taproot wallet has an internal key")

    def _keys(self, change: int, index: int) -> list[bytes]:
        if self.kind == "tr":
            keys = [c.pub(change, index).xonly() for c in self.cosigners]
        else:
            keys = [c.pub(change, index).sec() for c in self.cosigners]
        return sorted(keys) if self.sorted else keys

    def _internal(self, change: int, index: int) -> bytes:
        if isinstance(self.internal, Cosigner):
            return self.internal.pub(change, index).xonly()
        return bytes(self.internal)

    def scripts(self, change: int, index: int) -> MultisigScripts:
        keys = self._keys(change, index)
        if self.kind == "tr":
            return self._taproot(keys, change, index)
        ms = Script(_small_int(self.threshold) + b"".join(_push(k) for k in keys)
                    + _small_int(len(keys)) + b"\xae")
        if self.kind == "sh":
            spk = Script(b"\xa9\x14" + hashes.hash160(ms.data) + b"\x87")
            return MultisigScripts(spk, keys, redeem_script=ms)
        wsh = Script(b"\x00\x20" + hashlib.sha256(ms.data).digest())
        if self.kind == "wsh":
            return MultisigScripts(wsh, keys, witness_script=ms)
        spk = Script(b"\xa9\x14" + hashes.hash160(wsh.data) + b"\x87")
        return MultisigScripts(spk, keys, redeem_script=wsh, witness_script=ms)

    def _taproot(self, keys, change, index) -> MultisigScripts:
        # <k1> CHECKSIG <k2> CHECKSIGADD ... <kn> CHECKSIGADD <k> NUMEQUAL
        body = _push(keys[0]) + b"\xac" + b"".join(_push(k) + b"\xba" for k in keys[1:])
        leaf = Script(body + _small_int(self.threshold) + b"\x9c")
        leaf_h = leaf_hash(leaf.data)
        internal = self._internal(change, index)
        out, parity = output_key(internal, leaf_h)
        spk = Script(b"\x51\x20" + out)
        control = bytes([LEAF_VERSION | int(parity)]) + internal
        return MultisigScripts(spk, keys, leaf_script=leaf, leaf_hash=leaf_h,
                               internal_key=internal, control_block=control)

    def output(self, change: int, index: int) -> Script:
        return self.scripts(change, index).script_pubkey

    def address(self, change: int, index: int, network: str = "main") -> str:
        return self.output(change, index).address(NETWORKS[network])

    def descriptor(self) -> str:
        """The wallet as a descriptor (no checksum), for registering it."""
        name = {"wsh": "multi", "sh-wsh": "multi", "sh": "multi", "tr": "multi_a"}[self.kind]
        if self.sorted:
            name = "sorted" + name
        inner = f"{name}({self.threshold},{','.join(c.text() for c in self.cosigners)})"
        if self.kind == "wsh":
            return f"wsh({inner})"
        if self.kind == "sh-wsh":
            return f"sh(wsh({inner}))"
        if self.kind == "sh":
            return f"sh({inner})"
        internal = self.internal.text() if isinstance(self.internal, Cosigner) else self.internal.hex()
        return f"tr({internal},{inner})"

    def _derivations(self, scope, sc: MultisigScripts, change: int, index: int) -> None:
        for c in self.cosigners:
            der = DerivationPath(c.fingerprint, c.path(change, index))
            pub = c.pub(change, index)
            if self.kind == "tr":
                scope.taproot_bip32_derivations[pub] = ([sc.leaf_hash], der)
            else:
                scope.bip32_derivations[pub] = der
        if self.kind == "tr":
            if isinstance(self.internal, Cosigner):
                c = self.internal
                der = DerivationPath(c.fingerprint, c.path(change, index))
                scope.taproot_bip32_derivations[c.pub(change, index)] = ([], der)
            scope.taproot_internal_key = ec.PublicKey.from_xonly(sc.internal_key)
        else:
            scope.witness_script = sc.witness_script
            scope.redeem_script = sc.redeem_script

    def describe_input(self, inp, funding: Transaction, change: int, index: int) -> None:
        sc = self.scripts(change, index)
        self._derivations(inp, sc, change, index)
        if self.kind == "tr":
            inp.taproot_scripts[sc.control_block] = sc.leaf_script.data + bytes([LEAF_VERSION])
            inp.taproot_merkle_root = sc.leaf_hash
        else:
            inp.non_witness_utxo = funding
            if self.kind == "sh":
                inp.witness_utxo = None

    def describe_output(self, out, change: int, index: int) -> None:
        sc = self.scripts(change, index)
        self._derivations(out, sc, change, index)
        if self.kind == "tr":
            # PSBT_OUT_TAP_TREE: one leaf at depth 0
            out.unknown[bytes([PSBT_OUT_TAP_TREE])] = bytes([0, LEAF_VERSION]) + sc.leaf_script.serialize()


def cosigner(root: bip32.HDKey, path: str) -> Cosigner:
    """The Cosigner of `root`'s account at `path` (a host-side seed)."""
    return Cosigner(root.my_fingerprint, parse_path(path), root.derive(path).to_public())


# --- spends


@dataclass
class Built:
    psbt: PSBT
    spent: list[tuple[bytes, int]]  # (scriptPubKey, amount) per input


def build_spend(
    coins: list[tuple[object, int, int]],
    pay_to: Script,
    pay_amount: int,
    fee: int,
    change: tuple[object, int] | None = None,
    tag: int = 1,
    version: int = 0,
    more: list[tuple[Script, int]] = (),
) -> Built:
    """Spend one coin of `amount` per (account or Multisig, index, amount) in `coins`.

    Each coin gets its own funding transaction. The outputs are the payment,
    then the payments `more` [(script, amount)], then what is left after them
    and the fee, to `change` = (account or Multisig, index) on the change
    chain. `version` is the PSBT version: 0 (BIP174) or 2 (BIP370).
    """
    if version not in (0, 2):
        raise ValueError(f"unsupported PSBT version: {version}")
    funding = [
        funding_tx([(acct.output(0, idx), amount)], tag=tag + n)
        for n, (acct, idx, amount) in enumerate(coins)
    ]
    vin = [TransactionInput(f.txid(), 0, sequence=0xFFFFFFFD) for f in funding]
    total = sum(amount for _, _, amount in coins)
    vout = [TransactionOutput(pay_amount, pay_to)] + [TransactionOutput(a, spk) for spk, a in more]
    rest = total - pay_amount - sum(a for _, a in more) - fee
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
        acct.describe_input(inp, f, 0, idx)
    for out in psbt.outputs:
        out.unknown = {}
    if change and rest:
        change[0].describe_output(psbt.outputs[-1], 1, change[1])
    return Built(psbt, spent)

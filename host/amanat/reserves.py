"""BIP-322 proofs: proof of funds for a wallet's coins, and simple signatures.

A proof is a `to_sign` PSBT whose input 0 spends BIP-322's `to_spend` (built
from the message and a challenge script), whose other inputs are the coins
proven, and whose one output pays 0 sat to a bare OP_RETURN. The message
travels in PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE (0x09) so that the device can
rebuild `to_spend` from what it shows (firmware/signer/proof.py). Checking
a proof runs every input's scripts through libbitcoinkernel with the
amounts the proof states; that the coins exist on chain with those amounts
is the auditor's check against their own node.
"""

import base64
import hashlib
import io
from dataclasses import dataclass

from embit import bip32
from embit.psbt import PSBT
from embit.script import Script, Witness
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from . import kernel, txbuild
from .errors import AmanatError

PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE = b"\x09"
TAG = b"BIP0322-signed-message"
OP_RETURN = Script(b"\x6a")


class ProofError(AmanatError):
    """A proof or a BIP-322 signature that is malformed or does not verify."""


def message_hash(message: bytes) -> bytes:
    t = hashlib.sha256(TAG).digest()
    return hashlib.sha256(t + t + message).digest()


def to_spend(message: bytes, challenge: bytes) -> Transaction:
    """BIP-322's to_spend: version 0, the null outpoint with scriptSig OP_0
    PUSH32 message_hash, sequence 0; one 0-sat output to `challenge`."""
    vin = TransactionInput(b"\x00" * 32, 0xFFFFFFFF, Script(b"\x00\x20" + message_hash(message)), sequence=0)
    return Transaction(version=0, vin=[vin], vout=[TransactionOutput(0, Script(challenge))], locktime=0)


def to_sign(message: bytes, challenge: bytes, coins: list[tuple[bytes, int]] = ()) -> Transaction:
    """BIP-322's to_sign (version 0, locktime 0, sequence 0): input 0 spends
    to_spend, then one input per (txid in display order, vout) in `coins`."""
    vin = [TransactionInput(to_spend(message, challenge).txid(), 0, sequence=0)]
    vin += [TransactionInput(txid, vout, sequence=0) for txid, vout in coins]
    return Transaction(version=0, vin=vin, vout=[TransactionOutput(0, OP_RETURN)], locktime=0)


@dataclass(frozen=True)
class Coin:
    """A coin of the wallet to prove: where it is, its amount, its address."""

    txid: bytes  # display order
    vout: int
    amount: int
    change: int
    index: int


def parse_coin(text: str) -> Coin:
    """TXID:VOUT:AMOUNT_SAT:CHANGE/INDEX (the wallet address it pays)."""
    try:
        txid, vout, amount, where = text.split(":")
        change, index = where.split("/")
        coin = Coin(bytes.fromhex(txid), int(vout), int(amount), int(change), int(index))
        if len(coin.txid) != 32 or coin.vout < 0 or coin.amount <= 0 or coin.change not in (0, 1) or coin.index < 0:
            raise ValueError
        return coin
    except ValueError:
        raise ProofError(f"{text!r}: a coin is TXID:VOUT:AMOUNT_SAT:CHANGE/INDEX, e.g. "
                         f"{'ab' * 32}:0:150000:0/3") from None


def wallet_of(descriptor: str) -> txbuild.Multisig:
    """The wallet a registered multisig descriptor describes, for building PSBTs."""
    from .policy import parse

    ms = parse(descriptor)
    cosigners = [txbuild.Cosigner(k.fingerprint, list(k.origin), bip32.HDKey.from_string(k.key)) for k in ms.keys]
    internal = None
    if ms.internal is not None:
        k = ms.internal
        internal = (txbuild.Cosigner(k.fingerprint, list(k.origin), bip32.HDKey.from_string(k.key))
                    if k.is_extended else bytes.fromhex(k.key))
    return txbuild.Multisig(ms.form, ms.threshold, ms.func.startswith("sorted"), cosigners, internal)


def build_proof(wallet, message: bytes, coins: list[Coin], challenge: tuple[int, int] = (0, 0)) -> PSBT:
    """The proof PSBT (v0) for `coins` of `wallet` (a txbuild.Multisig, or an
    Account for one key), its challenge the wallet's address at (change,
    index). Segwit and taproot wallets only: a legacy input's signature
    covers no amount, and its full previous transaction would be needed."""
    if getattr(wallet, "kind", "") in ("sh", "p2pkh"):
        raise ProofError("proofs are built for segwit and taproot wallets only")
    spk = wallet.output(*challenge)
    spend = to_spend(message, spk.data)
    psbt = PSBT(to_sign(message, spk.data, [(c.txid, c.vout) for c in coins]), {})
    psbt.unknown = {PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE: message}
    where = [(spend, 0, challenge)] + [(None, c.amount, (c.change, c.index)) for c in coins]
    for inp, (funding, amount, (change, index)) in zip(psbt.inputs, where):
        inp.unknown = {}
        inp.witness_utxo = TransactionOutput(amount, wallet.output(change, index))
        wallet.describe_input(inp, funding, change, index)  # the coins' previous transactions: not needed
    psbt.outputs[0].unknown = {}
    return psbt


def serialize_proof(psbt: PSBT) -> bytes:
    """The proof PSBT's bytes, its unsigned transaction as BIP-322 has it:
    version 0, sequences 0, locktime 0 (embit writes a version of 0 as 2 and
    sequences of 0 as 0xFFFFFFFF; psbt_raw reads them back as written)."""
    from . import psbt_raw

    tx = psbt.tx
    exact = Transaction(version=0, vin=[TransactionInput(i.txid, i.vout, sequence=0) for i in tx.vin],
                        vout=tx.vout, locktime=0)
    _, maps = psbt_raw.parse(psbt.serialize())
    maps.glob[bytes([psbt_raw.PSBT_GLOBAL_UNSIGNED_TX])] = exact.serialize()
    return maps.serialize()


@dataclass(frozen=True)
class Verified:
    message: bytes
    challenge: bytes  # the challenge scriptPubKey
    coins: int
    total: int  # sat, as the proof states


def verify_proof(psbt: PSBT, message: bytes | None = None, utxos: dict | None = None) -> Verified:
    """Check a finished proof: its structure (BIP-322 proof of funds; the
    message from the PSBT unless given) and every input's signatures
    through libbitcoinkernel, with the amounts it states (or, for an input
    that states none, utxos[i] = (scriptPubKey, amount))."""
    from . import finalize

    if message is None:
        message = psbt.unknown.get(PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE)
    elif psbt.unknown.get(PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE, message) != message:
        raise ProofError("the message given is not the one in the proof")
    if message is None:
        raise ProofError("the PSBT carries no message (PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE): not a proof")
    if not psbt.inputs or psbt.inputs[0].witness_utxo is None and psbt.inputs[0].non_witness_utxo is None:
        raise ProofError("input 0 has no utxo: not a proof")
    spent = []
    for i, inp in enumerate(psbt.inputs):
        utxo = inp.witness_utxo or (inp.non_witness_utxo.vout[psbt.tx.vin[i].vout] if inp.non_witness_utxo else None)
        if utxo is not None:
            spent.append((utxo.script_pubkey.data, utxo.value))
        elif utxos and i in utxos:
            spent.append(utxos[i])
        else:
            raise ProofError(f"input {i}: amount and script unknown")
    challenge = spent[0][0]
    if psbt.tx.vin[0].txid != to_spend(message, challenge).txid() or psbt.tx.vin[0].vout != 0 or spent[0][1]:
        raise ProofError("input 0 does not spend the message's to_spend transaction (BIP-322)")
    if len(psbt.tx.vout) != 1 or psbt.tx.vout[0].value != 0 or psbt.tx.vout[0].script_pubkey.data != b"\x6a":
        raise ProofError("a proof has one output, 0 sat to a bare OP_RETURN")
    try:
        raw = finalize.finalize(psbt)
    except finalize.FinalizeError as e:
        raise ProofError(f"the proof is not fully signed: {e}") from None
    try:
        kernel.verify_transaction(raw, spent)
    except kernel.ScriptCheckError as e:
        raise ProofError(f"a signature does not verify: {e}") from None
    return Verified(message, challenge, len(spent) - 1, sum(a for _, a in spent[1:]))


# ---------------------------------------------------------------- simple signatures


def simple_signature(psbt: PSBT) -> str:
    """The BIP-322 simple signature (base64 of input 0's witness stack) of a
    signed one-input proof."""
    from . import finalize

    raw = finalize.finalize(psbt)
    tx = Transaction.read_from(io.BytesIO(raw))
    return base64.b64encode(tx.vin[0].witness.serialize()).decode()


def verify_simple(challenge: bytes, message: bytes, signature: str) -> None:
    """ProofError unless `signature` (base64 witness, optionally with the
    vectors' "smp" prefix) is a valid BIP-322 simple signature of `message`
    for the scriptPubKey `challenge`: to_sign with that witness, checked by
    libbitcoinkernel."""
    text = signature[3:] if signature.startswith("smp") else signature
    try:
        raw = base64.b64decode(text, validate=True)
        witness = Witness.read_from(io.BytesIO(raw))
        if witness.serialize() != raw:
            raise ValueError("trailing bytes")
    except Exception as e:
        raise ProofError(f"the signature is not base64 of a witness: {e}") from None
    tx = to_sign(message, challenge)
    tx.vin[0].witness = witness
    try:
        kernel.verify_transaction(tx.serialize(), [(challenge, 0)])
    except kernel.ScriptCheckError as e:
        raise ProofError(f"invalid signature: {e}") from None

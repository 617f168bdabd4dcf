"""Attacks found in review of the custody rules, each refused with its own
error (under the real MicroPython VM)."""

import pytest
from embit import bip32, bip39, script
from embit.networks import NETWORKS
from embit.psbt import PSBT
from embit.transaction import TransactionOutput

from amanat import inprocess, txbuild
from amanat.inprocess import DeviceCodeError
from psbt_scopes import join_scopes, split_scopes

MNEMONIC = "all all all all all all all all all all all all"
NETWORK = "test"
NET = NETWORKS[NETWORK]
OURS = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
EVE = bip32.HDKey.from_seed(bytes(range(2, 66)), version=NET["xprv"])
EVE2 = bip32.HDKey.from_seed(bytes(range(3, 67)), version=NET["xprv"])
PAYEE = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())


def account(kind):
    path = txbuild.account_path(kind, NETWORK)
    return txbuild.Account(kind, OURS.derive(path).to_public(), OURS.my_fingerprint, path)


def refused(raw, words, name="REFUSED", wallets=None):
    with pytest.raises(DeviceCodeError) as e:
        inprocess.sign(raw, MNEMONIC, network=NETWORK, wallets=wallets)
    assert e.value.name == name and words in e.value.message, e.value


def test_two_session_fee_attack():
    """Both our inputs in one PSBT; in each session one of them is passed off
    as foreign with a tiny amount. Each session alone shows a small fee; the
    signatures of both would make one transaction with a huge fee."""
    a = account("p2wpkh")
    built = txbuild.build_spend([(a, 3, 5_000_000), (a, 4, 5_000_000)], PAYEE, 5_000_000, 5_000_000)
    psbt = PSBT.parse(built.psbt.serialize())
    hidden = psbt.inputs[1]
    hidden.bip32_derivations = {}
    hidden.non_witness_utxo = None
    hidden.witness_utxo = TransactionOutput(5_000, hidden.witness_utxo.script_pubkey)
    refused(psbt.serialize(), "input 1: not this device's, and without its previous transaction")


def test_a_foreign_amount_is_fine_when_a_taproot_signature_commits_to_it():
    a, t = account("p2wpkh"), account("p2tr")
    foreign = txbuild.Account("p2wpkh", EVE.derive("m/84h/1h/0h").to_public(), EVE.my_fingerprint, "m/84h/1h/0h")
    built = txbuild.build_spend([(a, 1, 50_000), (t, 1, 50_000), (foreign, 0, 50_000)], PAYEE, 100_000, 2_000,
                                change=(a, 1))
    psbt = PSBT.parse(built.psbt.serialize())
    psbt.inputs[2].non_witness_utxo = None
    _, count = inprocess.sign(psbt.serialize(), MNEMONIC, network=NETWORK)
    assert count == 2


def test_a_wallet_named_single_sig_is_an_ordinary_wallet():
    evil = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, "m/48h/1h/0h/2h") for r in (OURS, EVE, EVE2)])
    a = account("p2wpkh")
    built = txbuild.build_spend([(a, 3, 1_000_000)], PAYEE, 10_000, 1_000, change=(evil, 2))
    out = inprocess.sign_with_review(built.psbt.serialize(), MNEMONIC, network=NETWORK,
                                     wallets=[("single-sig", evil.descriptor())])
    review = out["review"]
    assert review["change"] == [] and len(review["spends"]) == 2
    assert any("single-sig" in w for w in review["warnings"])
    mixed = txbuild.build_spend([(a, 3, 60_000), (evil, 4, 50_000)], PAYEE, 100_000, 1_000)
    refused(mixed.psbt.serialize(), "belong to different wallets", wallets=[("single-sig", evil.descriptor())])


@pytest.mark.parametrize("scope,key,value,words", [
    (0, b"\x03", (2**32 + 5).to_bytes(5, "little"), "global: field 03"),
    (0, b"\x02", (2).to_bytes(5, "little"), "global: field 02"),
    (2, b"\x03", (30_000).to_bytes(9, "little"), "output 0: field 03"),
    (1, b"\x16" + bytes(32), b"\xfe\xff\xff\xff\xff" + bytes(8), "input 0: field 16"),
    (1, b"\x17\x00", bytes(32), "input 0: key 1700"),
])
def test_malformed_fixed_fields_are_bad_psbts(scope, key, value, words):
    a = account("p2tr")
    built = txbuild.build_spend([(a, 5, 50_000)], PAYEE, 30_000, 500, change=(a, 5), version=2)
    scopes = split_scopes(built.psbt.serialize())
    scopes[scope] = [(k, v) for k, v in scopes[scope] if k != key] + [(key, value)]
    refused(join_scopes(scopes), words, name="BAD_PSBT")

"""`amanat psbt show`: the device's review computed on the host with its public keys only.

Every case runs the firmware's review twice under the real `micropython`
binary: with the seed (what the device computes) and watch-only with the
account xpubs (amanat.preview); both must give the same summary, or the same
refusal word for word.
"""

import json

import pytest
from click.testing import CliRunner
from embit import bip32, bip39, script
from embit.networks import NETWORKS

from amanat import descriptors, inprocess, preview, psbt_raw, txbuild
from amanat.cli import main

MNEMONIC = "all all all all all all all all all all all all"
NETWORK = "test"
NET = NETWORKS[NETWORK]
OURS = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
ALICE = bip32.HDKey.from_seed(bytes(range(64)), version=NET["xprv"])
BOB = bip32.HDKey.from_seed(bytes(range(1, 65)), version=NET["xprv"])
FP = OURS.my_fingerprint.hex()
VAULT = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, "m/48h/1h/0h/2h") for r in (OURS, ALICE, BOB)])


def account(kind, root=OURS):
    path = txbuild.account_path(kind, NETWORK)
    return txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)


def key_expr(kind):
    """The account key of `kind` (a script type, or a path)."""
    path = txbuild.account_path(kind, NETWORK) if kind in txbuild.PURPOSE else kind
    steps = descriptors.format_path(descriptors.parse_path(path), "")
    return f"[{FP}/{steps}]{OURS.derive(path).to_public().to_base58()}"


def payee(n=0):
    return script.p2wpkh(bip32.HDKey.from_seed(bytes([n]) * 32).key.get_public_key())


def both(raw, keys, wallets=(), limits=None):
    """(the device's review, the host's preview) of `raw`; each a dict or the DeviceCodeError."""
    def run(fn):
        try:
            return fn()
        except inprocess.DeviceCodeError as e:
            return e
    dev = run(lambda: inprocess.review(raw, MNEMONIC, network=NETWORK, wallets=list(wallets), limits=limits))
    dev_ = preview.from_keys(keys, list(wallets), NETWORK, FP)
    dev_.limits = limits
    host = run(lambda: preview.review(raw, dev_))
    if isinstance(host, dict):  # `amanat sign` asks for anti-exfil's rounds when the PSBT has ECDSA inputs of ours
        ecdsa = any(k[0] == 0x06 for m in psbt_raw.parse_maps(raw).inputs for k in m)
        assert host["review"].pop("anti_exfil") == ecdsa
        assert any(line.startswith("Anti-exfil: on" if ecdsa else "Anti-exfil: off")
                   for line in host["screens"][-1]["lines"])
    return dev, host


@pytest.mark.parametrize("kind", list(txbuild.PURPOSE))
def test_single_sig_review_is_the_devices(kind):
    acct = account(kind)
    built = txbuild.build_spend([(acct, 3, 50_000), (acct, 4, 20_000)], payee(), 60_000, 700, change=(acct, 2))
    dev, host = both(built.psbt.serialize(), [key_expr(kind)])
    assert host["review"] == dev
    assert dev["change"] and dev["signing"] == 2
    last = host["screens"][-1]
    assert last["screen"] == "review_tx" and last["title"] == "Send bitcoin?"
    assert any(dev["change"][0]["address"] in line for line in last["lines"])


def test_multisig_review_and_unregistered_hint():
    coins = [(VAULT, i, 40_000 + i) for i in range(2)]
    raw = txbuild.build_spend(coins, payee(), 50_000, 900, change=(VAULT, 5)).psbt.serialize()
    wallets = [("Vault", VAULT.descriptor())]
    dev, host = both(raw, [], wallets)  # the wallet's own key with our fingerprint is the account key
    assert host["review"] == dev and dev["wallet"] == "Vault" and dev["change"]
    assert host["screens"][-1]["lines"][0] == "From wallet Vault"
    # Not registered: the same refusal, naming `amanat wallet register`.
    dev, host = both(raw, [key_expr("m/48h/1h/0h/2h")])
    assert isinstance(dev, inprocess.DeviceCodeError) and isinstance(host, inprocess.DeviceCodeError)
    assert (host.name, host.message) == (dev.name, dev.message)
    assert "amanat wallet register" in host.message


def test_refusals_are_the_devices_word_for_word():
    acct = account("p2wpkh")
    raw = txbuild.build_spend([(acct, 0, 50_000)], payee(), 30_000, 15_000).psbt.serialize()
    limits = {"fee_percent_tenths": 10, "fee_max_sat": 10_000}
    dev, host = both(raw, [key_expr("p2wpkh")], limits=limits)
    assert isinstance(host, inprocess.DeviceCodeError) and host.name == "REFUSED" and "fee" in host.message
    assert (host.name, host.message) == (dev.name, dev.message)
    # A PSBT the host cannot parse either: the device's BAD_PSBT, the same words.
    dev, host = both(raw[:-7], [key_expr("p2wpkh")])
    assert host.name == "BAD_PSBT" and (host.name, host.message) == (dev.name, dev.message)
    foreign = account("p2wpkh", ALICE)
    raw = txbuild.build_spend([(foreign, 0, 50_000)], payee(), 30_000, 500).psbt.serialize()
    dev, host = both(raw, [key_expr("p2wpkh")])
    assert (host.name, host.message) == (dev.name, dev.message)


def test_long_transaction_is_paged_as_on_the_device():
    acct = account("p2wpkh")
    more = [(payee(n), 10_000) for n in range(1, 12)]  # more outputs than one screen holds
    built = txbuild.build_spend([(acct, 0, 900_000)], payee(), 10_000, 2_000, change=(acct, 1), more=more)
    dev, host = both(built.psbt.serialize(), [key_expr("p2wpkh")])
    assert host["review"] == dev and dev["truncated"]
    pages = [s for s in host["screens"] if s["screen"] == "review_outputs"]
    assert [p["title"] for p in pages] == ["Outputs 0-9 of 13", "Outputs 10-12 of 13"]
    assert [e["change"] for p in pages for e in p["outputs"]] == [False] * 12 + [True]


def test_a_key_the_preview_lacks_is_named():
    acct = account("p2tr")
    raw = txbuild.build_spend([(acct, 0, 50_000)], payee(), 30_000, 500).psbt.serialize()
    with pytest.raises(preview.PreviewError, match=r"no key for m/86h/1h/0h of " + FP):
        preview.review(raw, preview.from_keys([key_expr("p2wpkh")], [], NETWORK))


def test_keys_that_disagree_or_do_not_fit_are_errors():
    other = ALICE.derive("m/48h/1h/0h/2h").to_public().to_base58()
    with pytest.raises(preview.PreviewError, match="two different keys"):
        preview.from_keys([f"[{FP}/48h/1h/0h/2h]{other}"], [("Vault", VAULT.descriptor())], NETWORK)
    with pytest.raises(preview.PreviewError, match="different devices"):
        preview.from_keys([key_expr("p2wpkh"), f"[{ALICE.my_fingerprint.hex()}/48h/1h/0h/2h]{other}"], [])
    with pytest.raises(preview.PreviewError, match="another network"):
        preview.from_keys([key_expr("p2wpkh")], [], "main")
    with pytest.raises(preview.PreviewError, match=r"\[fingerprint/path\]xpub"):
        preview.from_keys([key_expr("p2wpkh") + "/0/*"], [])


def test_cli_offline(tmp_path):
    acct = account("p2wpkh")
    built = txbuild.build_spend([(acct, 1, 50_000)], payee(), 30_000, 500, change=(acct, 0))
    f = tmp_path / "t.psbt"
    f.write_bytes(built.psbt.serialize())
    runner = CliRunner()
    res = runner.invoke(main, ["psbt", "show", str(f), "--key", key_expr("p2wpkh")])
    assert res.exit_code == 0, res.output
    assert "Send bitcoin?" in res.output and "0.00030000 BTC" in res.output
    assert "The device would sign 1 of 1 inputs" in res.output and "the device's defaults" in res.output
    res = runner.invoke(main, ["psbt", "show", str(f), "--key", key_expr("p2wpkh"), "--json"])
    out = json.loads(res.output)
    assert out["device"] == FP and out["network"] == "test" and out["limits"] is None
    assert out["review"]["change"][0]["amount_sat"] == 50_000 - 30_000 - 500
    # The device would refuse it: exit 5, the device's reason.
    res = runner.invoke(main, ["psbt", "show", str(f), "--key", key_expr("p2wpkh").replace(FP, "00000000")])
    assert res.exit_code == 5 and "the device would refuse it: REFUSED" in res.output
    res = runner.invoke(main, ["psbt", "show", str(f), "--key", "[zz]tpub"])
    assert res.exit_code == 8 and "--key" in res.output

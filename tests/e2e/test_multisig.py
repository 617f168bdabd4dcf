"""Registered multisig wallets through the emulator's pty: registration,
signing with a second cosigner on the host, addresses, limits, refusals."""

import json

import pytest
from click.testing import CliRunner
from embit import bip32, bip39, script
from embit.networks import NETWORKS

from amanat import finalize, kernel, txbuild
from amanat.cli import main
from amanat.errors import DeviceError
from e2e_support import MNEMONIC, sign_checked

NET = NETWORKS["regtest"]
OURS = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
ALICE = bip32.HDKey.from_seed(bytes(range(64)), version=NET["xprv"])
BOB = bip32.HDKey.from_seed(bytes(range(1, 65)), version=NET["xprv"])
PATHS = {"wsh": "m/48h/1h/0h/2h", "sh-wsh": "m/48h/1h/0h/1h", "tr": "m/87h/1h/0h"}
PAYEE = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())


def wallet(kind, roots=(OURS, ALICE, BOB)):
    return txbuild.Multisig(kind, 2, True, [txbuild.cosigner(r, PATHS[kind]) for r in roots])


VAULTS = {kind: wallet(kind) for kind in PATHS}


@pytest.fixture(scope="module")
def dev(auto_emu):
    with auto_emu.client() as c:
        for kind, w in VAULTS.items():
            res = c.t.call("register_wallet", {"name": "Vault-" + kind, "descriptor": w.descriptor()}, timeout=30)
            assert len(res["registration"]) == 32
    return auto_emu


@pytest.mark.parametrize("kind", list(PATHS))
def test_two_of_three_with_a_second_officer(dev, kind):
    w = VAULTS[kind]
    coins = [(w, i, 50_000 + i) for i in range(3)]
    built = txbuild.build_spend(coins, PAYEE, 90_000, 1_500, change=(w, 4), tag=300 + list(PATHS).index(kind))
    psbt, review = sign_checked(dev, built)
    assert review["wallet"] == "Vault-" + kind
    assert [c["amount_sat"] for c in review["change"]] == [sum(c[2] for c in coins) - 90_000 - 1_500]
    assert len(review["spends"]) == 1
    psbt.sign_with(ALICE)  # the second officer, on another device
    kernel.verify_transaction(finalize.finalize(psbt), built.spent)
    rec = [s for s in dev.screens() if s["screen"] == "review_tx"][-1]
    assert rec["wallet"] == "Vault-" + kind and rec["change"] and rec["answer"] == "approve"


def test_registration_screen_and_wallet_queries(dev):
    rec = [s for s in dev.screens() if s["screen"] == "register_wallet"][0]
    assert rec["threshold"] == 2 and [c["ours"] for c in rec["cosigners"]].count(True) == 1
    with dev.client() as c:
        names = [w["name"] for w in c.t.call("list_wallets")["wallets"]]
        assert sorted(names) == sorted("Vault-" + k for k in PATHS)
        info = c.t.call("get_wallet", {"name": "Vault-wsh"})
        assert info["threshold"] == 2 and sum(k["ours"] for k in info["keys"]) == 1
        # Registering the same wallet again: same proof, no new prompt.
        before = len(dev.screens())
        again = c.t.call("register_wallet", {"name": "Vault-wsh", "descriptor": VAULTS["wsh"].descriptor()})
        assert again["registration"] == info["registration"] and len(dev.screens()) == before


@pytest.mark.parametrize("kind", ["wsh", "tr"])
def test_preview_from_the_device_is_what_it_shows(dev, kind, tmp_path):
    """`amanat psbt show` with the emulator connected: its keys, wallets and
    limits read from it, the review computed on the host, equal to the screen
    the device then shows for the same PSBT."""
    from amanat import preview

    w = VAULTS[kind]
    built = txbuild.build_spend([(w, 0, 70_000), (w, 1, 30_000)], PAYEE, 60_000, 1_200, change=(w, 3), tag=330)
    raw = built.psbt.serialize()
    with dev.client() as c:
        device = preview.from_device(c, raw)
        assert device.limits == c.get_limits()
    assert device.source == "the connected device"
    assert PATHS[kind] in device.keys and len(device.wallets) == len(VAULTS)
    shown = preview.review(raw, device)
    f = tmp_path / "t.psbt"
    f.write_bytes(raw)
    res = CliRunner().invoke(main, ["psbt", "show", str(f), "--port", dev.port, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["screens"] == shown["screens"]
    _, review = sign_checked(dev, built)
    assert shown["review"] == review
    screen = [s for s in dev.screens() if s["screen"] == "review_tx"][-1]
    assert shown["screens"][-1]["lines"] == screen["lines"] and shown["screens"][-1]["title"] == screen["title"]


@pytest.mark.parametrize("change", [0, 1])
def test_wallet_addresses(dev, change):
    w = VAULTS["wsh"]
    want = w.scripts(change, 7).script_pubkey.address(NET)
    with dev.client() as c:
        got = c.t.call("wallet_address", {"name": "Vault-wsh", "index": 7, "change": bool(change)}, timeout=30)
        assert got["address"] == want
        desc = w.descriptor().split("#")[0].replace("/<0;1>/*", f"/{change}/7")
        assert c.display_address(desc) == want
    shown = [s for s in dev.screens() if s["screen"] == "wallet_address"][-1]
    assert shown["wallet"] == "Vault-wsh" and shown["address"] == want


@pytest.mark.parametrize("roots,threshold,words", [
    ((ALICE, BOB), 2, "none of the keys"),
    ((OURS, ALICE, BOB), 0, "threshold"),
    ((OURS, ALICE, ALICE), 2, "duplicate"),
    ((OURS, ALICE), 1, "could spend alone"),
    ((OURS, OURS, ALICE), 2, "one device, one vote"),
    ((OURS, OURS, ALICE, BOB), 3, "one device, one vote"),  # two votes of four, below the threshold still
])
def test_registration_refusals(dev, roots, threshold, words):
    # the same path for every key, except for a second key of this device
    paths = ["m/48h/1h/0h/2h", "m/48h/1h/1h/2h" if roots[1] is OURS else "m/48h/1h/0h/2h"] + ["m/48h/1h/0h/2h"] * 2
    cos = [txbuild.cosigner(r, p) for r, p in zip(roots, paths)]
    w = txbuild.Multisig("wsh", max(threshold, 1), True, cos)
    desc = w.descriptor().split("#")[0]
    if threshold == 0:
        desc = desc.replace("sortedmulti(1,", "sortedmulti(0,")
    with dev.client() as c:
        with pytest.raises(DeviceError) as e:
            c.t.call("register_wallet", {"name": "Bad", "descriptor": desc})
        assert e.value.name == "BAD_PARAMS" and words in e.value.message


def test_name_reuse_for_other_keys_is_refused(dev):
    other = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, "m/48h/1h/5h/2h") for r in (OURS, ALICE, BOB)])
    with dev.client() as c:
        with pytest.raises(DeviceError) as e:
            c.t.call("register_wallet", {"name": "Vault-wsh", "descriptor": other.descriptor()})
        assert "already used" in e.value.message


def _refused(emu, built, words):
    with emu.client() as c:
        with pytest.raises(DeviceError) as e:
            c.sign_psbt(built.psbt.serialize())
        assert e.value.name == "REFUSED" and words in e.value.message, e.value
        assert c.t.call("ping") == {"busy": None, "progress": None}


def test_inputs_from_two_wallets(dev):
    built = txbuild.build_spend([(VAULTS["wsh"], 0, 50_000), (VAULTS["tr"], 0, 50_000)], PAYEE, 90_000, 1_000,
                                tag=320)
    _refused(dev, built, "belong to different wallets")


def test_change_with_a_substituted_cosigner(dev):
    """Change that names our key but swaps a cosigner's xpub is refused."""
    w = VAULTS["wsh"]
    built = txbuild.build_spend([(w, 0, 80_000)], PAYEE, 40_000, 1_000, change=(w, 1), tag=321)
    evil = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, PATHS["wsh"])
                                             for r in (OURS, ALICE, bip32.HDKey.from_seed(bytes(64), version=NET["xprv"]))])
    out = built.psbt.outputs[1]
    out.script_pubkey = evil.scripts(1, 1).script_pubkey
    _refused(dev, built, "output 1")


def test_fee_limit_and_officer_approved_change(dev):
    w = VAULTS["wsh"]
    built = txbuild.build_spend([(w, 0, 100_000)], PAYEE, 50_000, 20_000, change=(w, 2), tag=322)
    _refused(dev, built, "above the device's limit")
    with dev.client() as c:
        old = c.t.call("get_limits")
        assert old == {"fee_percent_tenths": 100, "fee_max_sat": 1_000_000}
        c.t.call("set_limits", {"fee_percent_tenths": 500, "fee_max_sat": 1_000_000}, timeout=30)
    psbt, review = sign_checked(dev, built)
    assert review["fee_sat"] == 20_000
    with dev.client() as c:
        c.t.call("set_limits", old, timeout=30)
    assert [s for s in dev.screens() if s["screen"] == "set_limits"][-1]["answer"] == "approve"


def test_delete_wallet(dev):
    extra = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, "m/48h/1h/9h/2h") for r in (OURS, ALICE, BOB)])
    with dev.client() as c:
        c.t.call("register_wallet", {"name": "Temp", "descriptor": extra.descriptor()}, timeout=30)
        c.t.call("delete_wallet", {"name": "Temp"}, timeout=30)
        assert "Temp" not in [x["name"] for x in c.t.call("list_wallets")["wallets"]]
        with pytest.raises(DeviceError):
            c.t.call("get_wallet", {"name": "Temp"})


def test_own_key_under_another_fingerprint_is_refused(dev):
    """Two registrations of one 2-of-2 script, each holding one of the
    device's keys, would let it spend alone."""
    a = txbuild.cosigner(OURS, "m/48h/1h/0h/2h")
    b = txbuild.cosigner(OURS, "m/48h/1h/1h/2h")
    fake = bytes.fromhex("deadbeef")
    hidden = txbuild.Multisig("wsh", 2, False, [a, txbuild.Cosigner(fake, b.origin, b.xpub)])
    with dev.client() as c:
        with pytest.raises(DeviceError) as e:
            c.t.call("register_wallet", {"name": "Ops", "descriptor": hidden.descriptor()})
        assert "cosigner 2: this device's own key" in e.value.message
        # The same key at a made-up origin cannot be derived here, but once one
        # wallet holds it as the device's, another may not list it as foreign.
        ours_b = txbuild.Multisig("wsh", 2, False, [txbuild.cosigner(ALICE, "m/48h/1h/0h/2h"), b])
        c.t.call("register_wallet", {"name": "Ops2", "descriptor": ours_b.descriptor()}, timeout=30)
        moved = txbuild.Multisig("wsh", 2, False, [a, txbuild.Cosigner(fake, [0x80000063], b.xpub)])
        with pytest.raises(DeviceError) as e:
            c.t.call("register_wallet", {"name": "Ops3", "descriptor": moved.descriptor()})
        assert "this device's in wallet Ops2" in e.value.message


def test_taproot_internal_key_of_this_device_is_refused(dev):
    cos = [txbuild.cosigner(r, PATHS["tr"]) for r in (ALICE, BOB)]
    w = txbuild.Multisig("tr", 2, True, [txbuild.cosigner(OURS, "m/87h/1h/5h")] + cos,
                         internal=txbuild.cosigner(OURS, "m/87h/1h/6h"))
    with dev.client() as c:
        with pytest.raises(DeviceError) as e:
            c.t.call("register_wallet", {"name": "KeyPath", "descriptor": w.descriptor()})
        assert "internal key is this device's" in e.value.message

"""Registering a wallet shows every character of every cosigner's key, with
its fingerprint and origin, one page each, before anything is stored. The
request loop on CPython (tests/firmware/device_loop.py)."""

import pytest
from embit import bip32, bip39
from embit.networks import NETWORKS

from amanat import txbuild
from device_loop import MNEMONIC, NETWORK, call, make_app
from signer import screens

NET = NETWORKS[NETWORK]
OURS = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
OTHERS = [bip32.HDKey.from_seed(bytes([n]) * 64, version=NET["xprv"]) for n in (1, 2)]
PATH = "m/48h/1h/0h/2h"
WALLET = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, PATH) for r in (OURS, *OTHERS)])


def test_each_cosigner_gets_a_page_with_its_whole_key(tmp_path):
    app = make_app(tmp_path)
    res = call(app, "register_wallet", name="Vault", descriptor=WALLET.descriptor())
    assert "result" in res, res
    pages = [r for r in app.board.screens if r["screen"] == "register_cosigner"]
    keys = sorted(r.derive(PATH).to_public().to_base58() for r in (OURS, *OTHERS))
    assert sorted(p["xpub"] for p in pages) == keys
    for n, page in enumerate(pages, 1):
        assert page["title"] == f"Cosigner {n} of 3" and page["answer"] == "approve"
        assert page["path"] == PATH and len(page["fingerprint"]) == 8
        key_lines = [line for line in page["lines"][2:] if line != "This device's key"]
        shown = "".join(line.replace(" ", "") for line in key_lines)
        assert shown == page["xpub"]  # every character on screen, nothing elided
        assert f"Fingerprint {page['fingerprint']}" in page["lines"]
    assert sum(p["ours"] for p in pages) == 1
    # the first page may shorten; it is never the only one
    [first] = [r for r in app.board.screens if r["screen"] == "register_wallet"]
    assert app.board.screens.index(first) < app.board.screens.index(pages[0])


@pytest.mark.parametrize("reject_at", [1, 3])
def test_rejecting_any_cosigner_page_registers_nothing(tmp_path, reject_at):
    def decide(screen):
        return "reject" if screen.get("n") == reject_at else "approve"

    app = make_app(tmp_path, decide=decide)
    res = call(app, "register_wallet", name="Vault", descriptor=WALLET.descriptor())
    assert res["error"] == {"code": 7, "message": "the officer did not approve wallet Vault"}
    assert call(app, "list_wallets")["result"] == {"wallets": []}


def test_groups_keep_every_character():
    xpub = OTHERS[0].derive(PATH).to_public().to_base58()
    lines = screens.groups(xpub)
    assert "".join(lines).replace(" ", "") == xpub
    assert all(len(line) <= 24 for line in lines)

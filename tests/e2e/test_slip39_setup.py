"""Recovering a device from SLIP39 shares (a Shamir backup): the officer
enters the shares on the device, in any order, each checked as it comes;
the master secret is the BIP32 seed (SLIP-0039's semantics), so the wallet
is the one the official vectors name; the passphrase is asked at every
unlock, never stored."""

import json
import time

import pytest
from embit import bip32

from amanat import emulator
from conftest import VECTORS
from e2e_support import Emu

CASES = json.loads((VECTORS / "slip39_vectors.json").read_text())


def _fingerprint(xprv):
    return bip32.HDKey.from_base58(xprv).my_fingerprint.hex()


@pytest.mark.parametrize("n", [3, 35, 44])  # 2-of-3 (128 bit), 2 groups (256 bit), extendable (256 bit)
def test_recover_from_the_official_shares(tmp_path, n):
    _, shares, _, xprv = CASES[n]
    e = Emu(tmp_path, mnemonic=list(reversed(shares)), passphrase="TREZOR", pin="2468").start()
    try:
        assert e.rec["fingerprint"] == _fingerprint(xprv)
    finally:
        e.stop()
    # a restart asks the passphrase again: the same wallet
    e = Emu(tmp_path, passphrase="TREZOR", pin="2468").start()
    try:
        assert e.rec["fingerprint"] == _fingerprint(xprv)
        screens = [s["screen"] for s in e.answered()]
        assert "unlock_passphrase" in screens and screens[:2] == ["setup_create", "setup_kind"]
        assert screens.count("setup_share") == len(shares)
    finally:
        e.stop()
    assert b"TREZOR" not in (tmp_path / "flash.img").read_bytes()


def test_a_mistyped_foreign_or_repeated_share_is_named_at_once(tmp_path):
    a = CASES[3][1]  # 2-of-3 shares of one backup
    other = CASES[22][1][0]  # a share of another backup
    typo = a[1].split()
    typo[5] = "academic" if typo[5] != "academic" else "acid"
    e = Emu(tmp_path).start()
    try:
        with e.debuglink() as dl:
            dl.wait_screen("setup_create")
            dl.reject()
            dl.wait_screen("setup_kind")
            dl.approve()
            dl.wait_screen("setup_share")
            dl.type_text(a[0])
            before = None
            for text, words in ((" ".join(typo), "share 2: its checksum fails"),
                                (other, "share 2 is from another backup than share 1"),
                                (a[0], "share 2 is a duplicate of share 1")):
                dl.wait_screen("setup_share")
                dl.type_text(text)
                for _ in range(200):
                    screen = dl.screen()
                    if screen and screen.get("error") and screen["error"] != before:
                        break
                    time.sleep(0.01)
                assert words in screen["error"], screen
                before = screen["error"]
                assert screen["share"] == 2 and "of 2" in screen["lines"][0]
            dl.type_text(a[1])
            dl.wait_screen("setup_pin")
    finally:
        e.stop()


def test_backup_check_of_a_slip39_device(tmp_path):
    import threading

    _, shares, _, _ = CASES[3]
    e = Emu(tmp_path, mnemonic=shares, passphrase="TREZOR", pin="2468", auto_confirm=True).start()
    try:
        with e.client() as c, e.debuglink() as dl:
            out = {}
            t = threading.Thread(target=lambda: out.update(matches=c.backup_check()), daemon=True)
            t.start()
            dl.wait_screen("confirm_pin")
            dl.type_text("2468")
            for share in reversed(shares):  # any order
                dl.wait_screen("check_share")
                dl.type_text(share)
            t.join(30)
        assert out == {"matches": True}
    finally:
        e.stop()

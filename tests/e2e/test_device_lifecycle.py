"""The seed's lifecycle on a set-up device, the officer working on its
screen (DebugLink in these tests): change the PIN, check the backup, wipe.
The host sends no PIN, word or share: it only asks, and hears the outcome."""

import json
import os
import subprocess
import sys
import threading

import pytest

from amanat import emulator
from amanat.errors import DeviceError
from e2e_support import MNEMONIC, Emu

AMANAT = os.path.join(os.path.dirname(sys.executable), "amanat")


def in_background(fn):
    out = {}

    def run():
        try:
            out["result"] = fn()
        except Exception as e:
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def type_in(dl, *steps):
    for name, text in steps:
        dl.wait_screen(name)
        dl.type_text(text)


@pytest.fixture
def dev(tmp_path):
    e = Emu(tmp_path, mnemonic=MNEMONIC, pin="2468", auto_confirm=True).start()
    yield e
    e.stop()


def test_change_pin_on_the_device(dev):
    with dev.client() as c, dev.debuglink() as dl:
        t, out = in_background(c.change_pin)
        type_in(dl, ("confirm_pin", "2468"), ("new_pin", "1357"), ("setup_pin_confirm", "1357"))
        t.join(30)
        assert out == {"result": None}
        t, out = in_background(c.change_pin)
        type_in(dl, ("confirm_pin", "2468"))  # the old PIN no longer opens it
        t.join(30)
        assert isinstance(out["error"], DeviceError) and out["error"].name == "REJECTED"
        assert "wrong PIN, 9 attempts left" in out["error"].message
    dev.stop()
    dev.kw["pin"] = "1357"
    dev.start()
    with dev.client() as c:
        assert c.info()["locked"] is False
    assert "1357" not in (dev.state / "screens.jsonl").read_text()


def test_backup_check_on_the_device(dev):
    with dev.client() as c, dev.debuglink() as dl:
        for words, want in ((MNEMONIC, True), ("legal winner thank year wave sausage worth useful legal winner "
                                               "thank yellow", False)):
            t, out = in_background(c.backup_check)
            type_in(dl, ("confirm_pin", "2468"), ("check_words", words))
            t.join(30)
            assert out == {"result": want}
    results = [s for s in dev.screens() if s["screen"] == "backup_result"]
    assert [r["matches"] for r in results] == [True, False]
    assert MNEMONIC.split()[3] not in (dev.state / "screens.jsonl").read_text()


def test_wipe_on_the_device_from_the_command_line(dev):
    with dev.client() as c:
        c.register_wallet("vault", _wallet())
    with dev.debuglink() as dl:
        p = subprocess.Popen([AMANAT, "device", "wipe", "--port", dev.port], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        screen = dl.wait_screen("wipe_device")  # never auto-approved
        assert screen["fingerprint"] == dev.rec["fingerprint"]
        dl.approve()
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "erased" in out
    with dev.client() as c:
        info = c.info()
    assert info["initialized"] is False and info["locked"] is True
    dev.stop()
    dev.start()  # set up again from the same words: the old wallet registrations are gone too
    with dev.client() as c:
        assert c.list_wallets() == []


def _wallet():
    from embit import bip32
    from embit.networks import NETWORKS

    from amanat import txbuild

    tprv = NETWORKS["regtest"]["xprv"]
    from embit import bip39

    keys = [bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=tprv)] + [
        bip32.HDKey.from_seed(bytes([i]) * 32, version=tprv) for i in (1, 2)]
    return txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(k, "m/48h/1h/0h/2h") for k in keys]).descriptor()

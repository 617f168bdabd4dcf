"""A device busy with one command, seen from another; a command interrupted
while the officer reviews. Real emulator, real processes, real signals."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from embit import bip32, bip39, script
from embit.networks import NETWORKS

from amanat import txbuild
from e2e_support import MNEMONIC, Emu

NET = NETWORKS["regtest"]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
FP = ROOT.my_fingerprint.hex()
BIN = os.path.dirname(sys.executable)


def run(tool, *args, env=None):
    return subprocess.run([os.path.join(BIN, tool), *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    e = Emu(tmp_path_factory.mktemp("busy"), mnemonic=MNEMONIC).start()
    yield e
    e.stop()


@pytest.fixture
def psbt_file(tmp_path):
    path = "m/84h/1h/0h"
    acct = txbuild.Account("p2wpkh", ROOT.derive(path).to_public(), ROOT.my_fingerprint, path)
    payee = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
    built = txbuild.build_spend([(acct, 0, 90_000)], payee, 50_000, 1_000, change=(acct, 1), tag=77)
    f = tmp_path / "transfer.psbt"
    f.write_bytes(built.psbt.serialize())
    return f


def start_sign(emu, psbt_file):
    """`amanat sign` waiting for the officer: (the process, the review screen)."""
    proc = subprocess.Popen([os.path.join(BIN, "amanat"), "sign", str(psbt_file), "--port", emu.port],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with emu.debuglink() as dl:
        screen = dl.wait_screen("review_tx")
    return proc, screen


def no_prompt_left(emu, timeout=10.0):
    deadline = time.monotonic() + timeout
    with emu.debuglink() as dl:
        while dl.screen() is not None:
            assert time.monotonic() < deadline, "the prompt stayed on the device"
            time.sleep(0.1)


@pytest.mark.parametrize("sig,code,name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_an_interrupted_sign_takes_the_review_down(emu, psbt_file, sig, code, name):
    before = len(emu.screens())
    proc, _ = start_sign(emu, psbt_file)
    try:
        # Meanwhile, from another terminal: busy, not missing.
        info = run("amanat", "info", "--port", emu.port)
        assert info.returncode == 7, info.stderr
        assert "busy" in info.stderr and "prompt" in info.stderr
        hwi = run("amanat-hwi", "--emulators", "-f", FP, "--chain", "regtest", "getmasterxpub")
        assert json.loads(hwi.stdout)["code"] == -15
        listed = json.loads(run("amanat-hwi", "--emulators", "enumerate").stdout)
        mine = [e for e in listed if e["path"] == emu.port]
        assert mine and "error" not in mine[0] and mine[0]["fingerprint"] == FP
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert f"interrupted ({name})" in err and out == ""
    # before the officer decided: what the device shows, and what is awaited (no terminal here)
    assert "On the device: Send bitcoin?" in err and "waiting for the officer" in err
    assert "Send 0.00050000 BTC to bcrt1q" in err
    assert not (psbt_file.parent / "transfer.signed.psbt").exists()  # nothing written, not even half
    no_prompt_left(emu)
    [record] = [s for s in emu.screens()[before:] if s["screen"] == "review_tx"]
    assert record["answer"] == "cancelled" and "cancelled" in record["cancelled"]
    # and the device takes the next request at once
    again = run("amanat", "info", "--port", emu.port)
    assert again.returncode == 0, again.stderr


def test_a_host_that_vanishes_loses_its_prompt(emu, psbt_file):
    proc, _ = start_sign(emu, psbt_file)
    proc.kill()  # no cancel is sent: the device notices the silence
    proc.wait()
    no_prompt_left(emu, timeout=30.0)
    record = [s for s in emu.screens() if s["screen"] == "review_tx"][-1]
    assert record["answer"] == "cancelled" and "stopped waiting" in record["cancelled"]

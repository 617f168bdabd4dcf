"""Proof of reserves end to end: a 2-of-3 wallet's coins proven with BIP-322
(amanat reserves prove), signed by two officers' emulated devices after
each shows "Proof of reserves", combined, and checked by libbitcoinkernel
(amanat reserves verify); the proof in each device's audit trail. And a
BIP-322 simple signature from amanat-hwi signmessage --bip322."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
from embit import bip32, bip39
from embit.networks import NETWORKS

from amanat import reserves, txbuild
from e2e_support import MNEMONIC, Emu

NET = NETWORKS["regtest"]
SEEDS = [MNEMONIC, "legal winner thank year wave sausage worth useful legal winner thank yellow"]
ROOTS = [bip32.HDKey.from_seed(bip39.mnemonic_to_seed(m), version=NET["xprv"]) for m in SEEDS]
BACKUP = bip32.HDKey.from_seed(bytes(range(64)), version=NET["xprv"])
PATH = "m/48h/1h/0h/2h"
BIN = os.path.dirname(sys.executable)
BLOCK = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"  # regtest genesis


def run(tool, *args):
    return subprocess.run([os.path.join(BIN, tool), *args], capture_output=True, text=True, timeout=120)


def amanat(*args):
    out = run("amanat", *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_two_officers_prove_the_reserve(tmp_path):
    wallet = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, PATH) for r in (*ROOTS, BACKUP)])
    coins = [f"{hashlib.sha256(b'reserve coin %d' % k).hexdigest()}:{k}:{(k + 1) * 25_000_000}:0/{k + 1}"
             for k in range(3)]
    devices = [Emu(tmp_path / f"officer{n}", mnemonic=m, auto_confirm=True).start() for n, m in enumerate(SEEDS)]
    try:
        for dev in devices:
            with dev.client() as c:
                c.register_wallet("Reserve", wallet.descriptor())
        out = json.loads(amanat("reserves", "prove", "--wallet", "Reserve", "--message", "Reserve of the Republic",
                                "--bind-block", BLOCK, "-o", str(tmp_path / "proof.psbt"), *coins,
                                "--port", devices[0].port, "--json"))
        assert out["coins"] == 3 and out["total_sat"] == 150_000_000
        assert out["message"].startswith("Reserve of the Republic\nblock " + BLOCK + "\ndate ")
        for n, dev in enumerate(devices):
            signed = json.loads(amanat("sign", str(tmp_path / "proof.psbt"), "-o", str(tmp_path / f"o{n}.psbt"),
                                       "--port", dev.port, "--json"))
            assert signed["signatures"] == 4  # input 0 (the challenge) and the three coins
            p = signed["review"]["proof"]
            assert (p["coins"], p["total_sat"]) == (3, 150_000_000) and p["message"].startswith("Reserve of")
            [shown] = [s for s in dev.screens() if s["screen"] == "proof_of_reserves"]
            assert shown["answer"] == "approve" and shown["wallet"] == "Reserve"
            assert "3 coins, total 1.50000000 BTC" in shown["lines"]
        # one officer's signatures are not a proof of a 2-of-3 wallet
        lone = run("amanat", "reserves", "verify", str(tmp_path / "o0.psbt"))
        assert lone.returncode == 6 and "not fully signed" in lone.stderr
    finally:
        for dev in devices:
            dev.stop()
    amanat("psbt", "combine", str(tmp_path / "o0.psbt"), str(tmp_path / "o1.psbt"), "-o", str(tmp_path / "both.psbt"))
    out = json.loads(amanat("reserves", "verify", str(tmp_path / "both.psbt"), "--json"))
    assert out["ok"] and out["coins"] == 3 and out["total_sat"] == 150_000_000
    assert out["challenge"] == wallet.output(0, 0).data.hex()
    # another message than the one proven fails
    bad = run("amanat", "reserves", "verify", str(tmp_path / "both.psbt"), "--message", "something else")
    assert bad.returncode == 6 and "not the one in the proof" in bad.stderr


def test_mutations_that_could_move_the_coins_are_refused_by_the_device(tmp_path):
    """Through the serial line, on the firmware under MicroPython: each way
    of making the proof a spend is refused with its cause, recorded in the
    trail, and the device still signs the proof itself afterwards."""
    from embit.script import p2wpkh

    from amanat.errors import DeviceError

    wallet = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, PATH) for r in (*ROOTS, BACKUP)])
    coins = [reserves.Coin(hashlib.sha256(b"coin %d" % k).digest(), k, 60_000_000, 0, k + 1) for k in range(2)]
    stranger = p2wpkh(bip32.HDKey.from_seed(b"\x07" * 32).key.get_public_key())

    def real_output(p):
        p.outputs[0].value, p.outputs[0].script_pubkey = 50_000, stranger

    def anyone_can_pay(p):
        p.inputs[1].sighash_type = 0x81  # ALL|ANYONECANPAY: the coin's signature no longer binds input 0

    def another_message(p):
        p.unknown[reserves.PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE] = b"Reserve of the Republic, as shown"

    mutations = [(real_output, "it would be a real payment"),
                 (anyone_can_pay, "input 1: sighash type 0x81 is not allowed"),
                 (another_message, "input 0 does not spend the to_spend transaction of the message shown")]
    dev = Emu(tmp_path / "officer", mnemonic=SEEDS[0], auto_confirm=True).start()
    try:
        with dev.client() as c:
            c.register_wallet("Reserve", wallet.descriptor())
            for mutate, cause in mutations:
                psbt = reserves.build_proof(wallet, b"Reserve of the Republic", coins)
                mutate(psbt)
                with pytest.raises(DeviceError) as e:
                    c.sign_psbt(reserves.serialize_proof(psbt))
                assert e.value.name == "REFUSED" and cause in e.value.message, (mutate.__name__, e.value.message)
            signed = c.sign_psbt(reserves.serialize_proof(reserves.build_proof(wallet, b"Reserve of the Republic",
                                                                               coins)))
            assert signed.review["proof"]["total_sat"] == 120_000_000
        records = dev.screens()
    finally:
        dev.stop()
    assert not [r for r in records if r["screen"] == "proof_of_reserves" and r.get("answer") != "approve"]
    refused = [r for r in records if r["screen"] == "refused"]
    assert [any(cause in r["reason"] for r in refused) for _, cause in mutations] == [True] * 3
    assert all(r["method"] == "sign_psbt" and len(r["psbt_sha256"]) == 64 for r in refused)


def test_hwi_signmessage_bip322_is_a_simple_signature(auto_emu):
    path = "m/84h/1h/0h/0/7"
    out = run("amanat-hwi", "--device-path", auto_emu.port, "--chain", "regtest", "signmessage", "--bip322",
              "Hello World", path)
    assert out.returncode == 0, out.stderr
    sig = json.loads(out.stdout)["signature"]
    key = ROOTS[0].derive(path).key
    from embit.script import p2wpkh

    reserves.verify_simple(p2wpkh(key).data, b"Hello World", sig)  # libbitcoinkernel runs to_sign
    shown = [s for s in auto_emu.screens() if s["screen"] == "proof_of_reserves"][-1]
    assert shown["proof"]["coins"] == 0 and shown["proof"]["message"] == "Hello World"
    # the legacy format stays the default
    legacy = run("amanat-hwi", "--device-path", auto_emu.port, "--chain", "regtest", "signmessage", "Hello World",
                 path)
    assert legacy.returncode == 0 and json.loads(legacy.stdout)["signature"] != sig
    # an address type without a simple signature is named
    wrapped = run("amanat-hwi", "--device-path", auto_emu.port, "--chain", "regtest", "signmessage", "--bip322",
                  "Hello World", "m/49h/1h/0h/0/0")
    assert "BIP84 and BIP86" in json.loads(wrapped.stdout)["error"]  # HWI's way: an error in the JSON

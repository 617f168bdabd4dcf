"""The device-signed audit trail end to end: every kind of record from a real
flow through the emulator, `amanat audit key/export/verify`, tampering
reported by the offline verifier, restarts, and a small trail filling up to
the refusal, freed by an acknowledged export."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from embit import bip32, bip39
from embit.networks import NETWORKS

from amanat import audit, emulator, txbuild
from amanat.errors import DeviceError, TransportError
from e2e_support import MNEMONIC, Emu

NET = NETWORKS["regtest"]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
FP = ROOT.my_fingerprint
BIN = os.path.dirname(sys.executable)
PIN = "2468"


def amanat(*args):
    return subprocess.run([os.path.join(BIN, "amanat"), *args], capture_output=True, text=True, timeout=120)


def spend(fee=700, tag=1):
    path = txbuild.account_path("p2wpkh", "regtest")
    acct = txbuild.Account("p2wpkh", ROOT.derive(path).to_public(), FP, path)
    return txbuild.build_spend([(acct, 3, 800_000)], acct.output(0, 9), 30_000, fee, change=(acct, 1),
                               tag=tag).psbt.serialize()


def vault():
    """A 2-of-3 wsh(sortedmulti) with the device's key."""
    others = [bip32.HDKey.from_seed(bytes([i]) * 32, version=NET["xprv"]) for i in (1, 2)]
    keys = [txbuild.cosigner(k, "m/48h/1h/0h/2h") for k in [ROOT] + others]
    return txbuild.Multisig("wsh", 2, True, keys).descriptor()


def lines_of(path):
    return [line for line in path.read_bytes().split(b"\n") if line]


@pytest.fixture(scope="module")
def trail(tmp_path_factory):
    """A device taken through setup, signing, a refusal, a limit change, a
    message, wrong and right PINs, a review cut off by a power loss and a
    wipe, then its trail exported: (state, the log key, the export's lines)."""
    state = tmp_path_factory.mktemp("trail")
    e = Emu(state, mnemonic=MNEMONIC, pin=PIN, auto_confirm=True).start()
    try:
        out = amanat("audit", "key", "--json", "--state", str(state))
        assert out.returncode == 0, out.stderr
        key = json.loads(out.stdout)
        assert key["path"] == "m/1095582030h/0h"
        assert key["log_key"] == ROOT.derive("m/1095582030h/0h").key.sec().hex()
        with e.client() as c:
            c.sign_psbt(spend())
            with pytest.raises(DeviceError, match="REFUSED"):
                c.sign_psbt(spend(fee=300_000, tag=2))  # over the fee limits
            c.set_limits(55, 777_777)
            c.sign_message(b"proof of control", "m/84h/1h/0h/0/0")
            c.register_wallet("vault", vault())
    finally:
        e.stop()
    # a locked start: a wrong PIN, then the right one
    emulator.start(state, pin=PIN, unlock=False)
    try:
        assert emulator.unlock(state, "1111")["outcome"] == "wrong"
        assert emulator.unlock(state, PIN)["outcome"] == "unlocked"
    finally:
        emulator.stop(state)
    # a review cut off by a power loss: the officer never answered it
    rec = Emu(state, pin=PIN).start().rec
    from amanat.client import Client
    from amanat.debuglink import DebugLink

    def sign():
        try:
            with Client(rec["port"]) as c:
                c.sign_psbt(spend(tag=3))
        except (TransportError, DeviceError):
            pass

    t = threading.Thread(target=sign, daemon=True)
    t.start()
    with DebugLink(rec["debug_port"]) as dl:
        dl.wait_screen("review_tx")
    os.killpg(rec["pid"], signal.SIGKILL)
    t.join(10)
    emulator.stop(state)
    e = Emu(state, pin=PIN, auto_confirm=True).start()
    try:
        out = amanat("audit", "export", "-o", str(state / "trail.jsonl"), "--json", "--state", str(state))
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout)
        assert summary["ok"] and summary["log_key"] == key["log_key"]
    finally:
        e.stop()
    return state, key["log_key"], lines_of(state / "trail.jsonl")


def test_every_kind_of_record_is_there_and_verifies(trail):
    state, key, lines = trail
    records = [json.loads(x) for x in lines]
    kinds = {r["screen"] for r in records}
    assert {"boot", "setup", "review_tx", "refused", "set_limits", "sign_message", "register_wallet", "pin",
            "interrupted", "checkpoint", "audit_key", "unlock_pin"} <= kinds
    registered = next(r for r in records if r["screen"] == "register_wallet")
    assert registered["answer"] == "approve" and registered["name"] == "vault"
    fp = audit.key_fingerprint(bytes.fromhex(key))
    setup = next(r for r in records if r["screen"] == "setup")
    assert setup["log_key"] == key and setup["key"] == fp
    assert all(r["key"] == fp for r in records[records.index(setup):])
    assert all(r["key"] is None for r in records[: records.index(setup)])
    refused = next(r for r in records if r["screen"] == "refused")
    assert refused["method"] == "sign_psbt" and refused["code"] == "REFUSED" and "fee" in refused["reason"]
    assert len(refused["psbt_sha256"]) == 64
    limits = next(r for r in records if r["screen"] == "set_limits")
    assert limits["old"]["fee_max_sat"] != 777_777 and limits["new"]["fee_max_sat"] == 777_777
    assert any("777777 sat" in line for line in limits["lines"])
    outcomes = [r["outcome"] for r in records if r["screen"] == "pin"]
    assert outcomes[:2] == ["wrong", "right"] and set(outcomes) == {"wrong", "right"}  # then each start's unlock
    cut = next(r for r in records if r["screen"] == "interrupted")
    assert cut["method"] == "sign_psbt"
    review = [r for r in records if r["screen"] == "review_tx"]
    assert review[0]["answer"] == "approve" and len(review[0]["txid"]) == 64
    # every session start showed the paper log's entry
    pins = [r for r in records if r["screen"] == "unlock_pin"]
    assert pins and all("Audit trail: record %d, head %s" % (r["trail_seq"], r["trail_head"]) in r["lines"]
                        for r in pins)
    # and the CLI checks it all offline
    entry = pins[-1]
    out = amanat("audit", "verify", str(state / "trail.jsonl"), "--key", key,
                 "--expect", "%d:%s" % (entry["trail_seq"], entry["trail_head"]))
    assert out.returncode == 0, out.stderr
    assert "every link and" in out.stdout and "last checkpoint: record %d" % records[-1]["seq"] in out.stdout


@pytest.mark.parametrize("tamper, says", [
    ("remove", "follows seq"),
    ("reorder", "follows seq"),
    ("edit", "the record before it was changed or removed"),
    ("forge", "not one given (--key)"),
    ("truncate", "records were cut off the end"),
])
def test_tampering_is_reported(trail, tmp_path, tamper, says):
    state, key, lines = trail
    records = [json.loads(x) for x in lines]
    n = next(i for i, r in enumerate(records) if r["screen"] == "review_tx")
    expect = "%d:%s" % (records[-1]["seq"], audit.line_hash(lines[-1])[:8])  # the last paper log entry
    if tamper == "remove":
        lines = lines[:n] + lines[n + 1:]
    elif tamper == "reorder":
        lines = lines[:n] + [lines[n + 1], lines[n]] + lines[n + 2:]
    elif tamper == "edit":
        lines = lines[:n] + [lines[n].replace(b'"answer":"approve"', b'"answer":"reject"')] + lines[n + 1:]
    elif tamper == "forge":
        # the whole chain rewritten from the review on, checkpoints signed with another key
        import coincurve

        other = coincurve.PrivateKey(b"\x05" * 32)
        out, prev = lines[:n], audit.line_hash(lines[n - 1])
        for r in records[n:]:
            r = dict(r, prev=prev, key=audit.key_fingerprint(other.public_key.format()))
            if r["screen"] == "review_tx":
                r["answer"] = "reject"
            if r["screen"] == "checkpoint":
                r["covers_head"] = prev
                r["sig"] = other.sign(audit.checkpoint_digest(r["covers_seq"], prev), hasher=None).hex()
            out.append(audit.canonical(r))
            prev = audit.line_hash(out[-1])
        lines = out
    elif tamper == "truncate":
        last_cp = max(i for i, r in enumerate(records[:-1]) if r["screen"] == "checkpoint")
        lines = lines[: last_cp + 1]  # cut back to an earlier checkpoint: what is left still verifies
        path = tmp_path / "cut.jsonl"
        path.write_bytes(b"".join(x + b"\n" for x in lines))
        assert amanat("audit", "verify", str(path), "--key", key).returncode == 0
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    out = amanat("audit", "verify", str(path), "--key", key, "--expect", expect)
    assert out.returncode == 1 and says in out.stderr, out.stderr


def test_a_small_trail_fills_up_refuses_and_an_acknowledged_export_frees_it(tmp_path):
    state = tmp_path / "small"
    e = Emu(state, mnemonic=MNEMONIC, pin=PIN, auto_confirm=True, trail_kib=16).start()
    try:
        with e.client() as c:
            warned = False
            for i in range(200):
                info = c.info()["trail"]
                if info["used"] >= info["capacity"]:
                    break
                if info["percent"] >= 80:
                    assert "full" in c.info()["trail"]["warning"]
                    c.sign_psbt(spend(tag=100 + i))
                    shown = [r for r in e.screens() if r["screen"] == "review_tx"][-1]  # what the officer saw
                    warned = warned or any(line.startswith("Warning: audit trail") for line in shown["lines"])
                else:
                    c.sign_message(b"filler %d" % i, "m/84h/1h/0h/0/0")
            assert warned
            with pytest.raises(DeviceError, match="TRAIL_FULL"):
                c.sign_psbt(spend(tag=99))
            with pytest.raises(DeviceError, match="TRAIL_FULL"):
                c.set_limits(50, 500_000)
        assert (state / "screens.1.jsonl").exists()
        out = amanat("audit", "export", "-o", str(tmp_path / "a.jsonl"), "--free", "--json", "--state", str(state))
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["freed"] > 0  # (the current file may since have become the archive)
        with e.client() as c:
            c.set_limits(50, 500_000)  # signs and changes again
            assert c.info()["trail"]["used"] < c.info()["trail"]["capacity"]
        out = amanat("audit", "export", "-o", str(tmp_path / "b.jsonl"), "--state", str(state))
        assert out.returncode == 0, out.stderr
        key = ROOT.derive("m/1095582030h/0h").key.sec().hex()
        # the two exports join into the whole history, seq 1 to the end, one chain
        out = amanat("audit", "verify", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--key", key, "--json")
        assert out.returncode == 0, out.stderr
        rep = json.loads(out.stdout)
        assert rep["first_seq"] == 1 and rep["counts"]["refused"] == 1 and rep["counts"]["audit_exported"] == 1
        second = lines_of(tmp_path / "b.jsonl")
        assert json.loads(second[0])["seq"] > 1  # the freed archive's records are only in the first export
    finally:
        e.stop()


def test_a_wipe_and_a_new_seed_keep_one_trail_under_two_keys(tmp_path):
    """The trail outlives the seed: the wipe is recorded, the next seed's log
    key signs the checkpoints from then on, and the auditor needs both keys."""
    other = "legal winner thank year wave sausage worth useful legal winner thank yellow"
    state = tmp_path / "dev"
    e = Emu(state, mnemonic=MNEMONIC, pin=PIN, auto_confirm=True).start()
    try:
        with e.client() as c, e.debuglink() as dl:
            t = threading.Thread(target=c.wipe, daemon=True)
            t.start()
            dl.wait_screen("wipe_device")  # never auto-approved
            dl.approve()
            t.join(30)
            assert c.info()["initialized"] is False
    finally:
        e.stop()
    e = Emu(state, mnemonic=other, pin=PIN, auto_confirm=True).start()  # set up again
    try:
        out = amanat("audit", "export", "-o", str(tmp_path / "t.jsonl"), "--state", str(state), "--json")
        assert out.returncode == 0, out.stderr
        exported = json.loads(out.stdout)
        new_key = exported["log_key"]
    finally:
        e.stop()
    old_key = ROOT.derive("m/1095582030h/0h").key.sec().hex()
    assert new_key != old_key and exported["earlier_log_keys"] == [old_key]
    records = [json.loads(x) for x in lines_of(tmp_path / "t.jsonl")]
    wiped = next(r for r in records if r["screen"] == "wiped")
    assert wiped["reason"] == "the officer erased the device" and wiped["key"] == audit.key_fingerprint(
        bytes.fromhex(old_key))
    assert [r["screen"] for r in records].count("setup") == 2
    # the old seed's records were signed by its own key before the wipe erased it
    signed_before = [r for r in records if r["screen"] == "checkpoint" and r["seq"] < wiped["seq"]]
    assert signed_before and signed_before[-1]["key"] == wiped["key"]
    both = amanat("audit", "verify", str(tmp_path / "t.jsonl"), "--key", old_key, "--key", new_key)
    assert both.returncode == 0, both.stderr
    one = amanat("audit", "verify", str(tmp_path / "t.jsonl"), "--key", new_key)
    assert one.returncode == 1 and "not one given (--key)" in one.stderr

"""The emulator contract other tools rely on: the start command's JSON line,
--detach and stop, side-by-side devices, --heap, and a line that breaks."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from amanat import demo, emulator
from amanat.client import Client
from amanat.errors import TransportError
from e2e_support import MNEMONIC, Emu

AMANAT = os.path.join(os.path.dirname(sys.executable), "amanat")


def test_start_detach_and_stop_from_the_command_line(tmp_path):
    state = tmp_path / "dev"
    out = subprocess.run([AMANAT, "emulator", "start", "--state", str(state), "--mnemonic", MNEMONIC,
                          "--network", "signet", "--detach"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = json.loads(out.stdout.splitlines()[0])
    assert set(line) >= {"port", "pid", "state"} and line["state"] == str(state.resolve())
    from embit import bip32, bip39

    fp = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC)).my_fingerprint.hex()
    assert line["fingerprint"] == fp and line["network"] == "signet"
    try:
        listed = subprocess.run([AMANAT, "emulator", "list", "--json"], capture_output=True, text=True, timeout=60)
        mine = [e for e in json.loads(listed.stdout) if e["state"] == line["state"]]
        assert [(e["port"], e["fingerprint"], e["network"]) for e in mine] == [(line["port"], fp, "signet")]
        table = subprocess.run([AMANAT, "emulator", "list"], capture_output=True, text=True, timeout=60).stdout
        assert fp in table
        with Client(line["port"]) as c:
            assert c.info()["network"] == "signet"
            assert c.get_xpub("m/84h/1h/0h").startswith("tpub")
        again = subprocess.run([AMANAT, "emulator", "start", "--state", str(state), "--detach"],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode != 0 and "already running" in again.stderr
    finally:
        stop = subprocess.run([AMANAT, "emulator", "stop", "--state", str(state)], capture_output=True, text=True)
    assert stop.returncode == 0
    assert not emulator.read_record(state)
    with pytest.raises(TransportError):
        Client(line["port"], timeout=1)


def test_side_by_side_and_heap_cap(tmp_path):
    # the unix port compiles the firmware into its heap at boot (some 500 KB):
    # a cap well above that, so that this tests the cap and not the margin
    a = Emu(tmp_path / "a", mnemonic=MNEMONIC, auto_confirm=True, heap=800_000).start()
    b = Emu(tmp_path / "b", mnemonic="all all all all all all all all all all all all", network="test").start()
    try:
        with a.client() as ca, b.client() as cb:
            ia, ib = ca.info(), cb.info()
        assert ia["fingerprint"] != ib["fingerprint"]
        assert (ia["network"], ib["network"]) == ("regtest", "test")
        assert 700_000 < ia["heap"]["size"] <= 800_000 < ib["heap"]["size"]  # capped, and the other not

        def info(*pick):
            out = subprocess.run([AMANAT, "info", "--json", *pick], capture_output=True, text=True, timeout=60)
            return out.returncode, out.stdout and json.loads(out.stdout), out.stderr

        code, _, err = info()
        assert code == 3 and "--fingerprint or --state" in err  # two devices: which one?
        assert info("--state", str(b.state))[1]["port"] == b.port
        assert info("--fingerprint", bytes(ia["fingerprint"]).hex())[1]["port"] == a.port
        assert info("--fingerprint", "00000000")[0] == 3
    finally:
        a.stop()
        b.stop()


def test_a_dead_device_is_a_clear_error(tmp_path):
    e = Emu(tmp_path, mnemonic=MNEMONIC).start()
    c = e.client(timeout=2)
    try:
        os.killpg(e.rec["pid"], signal.SIGKILL)
        time.sleep(0.2)
        with pytest.raises(TransportError) as err:
            c.get_xpub("m/0")
        assert e.port in str(err.value)
    finally:
        c.close()
        e.stop()


def test_demo_runs(capsys):
    txid = demo.run()
    assert len(txid) == 64


def test_passphrase_is_asked_again_at_unlock(tmp_path):
    from embit import bip32, bip39

    want = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC, "reserve")).my_fingerprint
    e = Emu(tmp_path, mnemonic=MNEMONIC, passphrase="reserve").start()
    e.stop()
    e = Emu(tmp_path, passphrase="reserve").start()
    try:
        with e.client() as c:
            assert c.info()["fingerprint"] == want
        names = [s["screen"] for s in e.answered()]
        assert names[-2:] == ["unlock_pin", "unlock_passphrase"]
        assert b"reserve" not in (tmp_path / "flash.img").read_bytes()
        assert b"reserve" not in (tmp_path / "screens.jsonl").read_bytes()
    finally:
        e.stop()


def test_ten_wrong_pins_erase_the_seed(tmp_path):
    Emu(tmp_path, mnemonic=MNEMONIC, pin="2468").start().stop()
    for attempt in range(1, 11):
        with pytest.raises(emulator.EmulatorError) as err:
            Emu(tmp_path, pin="1111", fast_clock=True).start()  # the delays from the third on, 100 times shorter
        if attempt < 10:
            assert f"{10 - attempt} attempts left" in str(err.value)
    assert "erased" in str(err.value)
    # The right PIN no longer helps: the device is back to its setup screen.
    e = Emu(tmp_path, pin="2468").start()
    try:
        with e.client() as c:
            assert c.info()["initialized"] is False
    finally:
        e.stop()


def test_a_wrong_passphrase_at_unlock_is_caught(tmp_path):
    Emu(tmp_path, mnemonic=MNEMONIC, passphrase="reserve").start().stop()
    with pytest.raises(emulator.EmulatorError) as err:
        Emu(tmp_path, passphrase="reserv").start()
    assert "another wallet" in str(err.value)


def test_screen_and_press_from_the_command_line(tmp_path):
    """A person answers the emulator's prompt from another terminal."""
    import threading

    from embit.descriptor.checksum import add_checksum

    e = Emu(tmp_path, mnemonic=MNEMONIC).start()
    try:
        with e.client() as c:
            fp = c.info()["fingerprint"].hex()
            xpub = c.get_xpub("m/84h/1h/0h")
            result = {}
            t = threading.Thread(target=lambda: result.update(
                address=c.display_address(add_checksum(f"wpkh([{fp}/84h/1h/0h]{xpub}/0/3)"))))
            t.start()
            for _ in range(100):
                shown = subprocess.run([AMANAT, "emulator", "screen", "--state", str(tmp_path)],
                                       capture_output=True, text=True).stdout
                if "[display_address]" in shown:
                    break
                time.sleep(0.05)
            assert "[display_address]" in shown and "bcrt1" in shown
            out = subprocess.run([AMANAT, "emulator", "press", "approve", "--state", str(tmp_path)],
                                 capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            t.join(10)
            assert result["address"].startswith("bcrt1")
    finally:
        e.stop()


def test_audit_chain_survives_restarts_and_shows_tampering(tmp_path):
    from amanat import audit

    e = Emu(tmp_path, mnemonic=MNEMONIC, auto_confirm=True).start()
    e.stop()
    e = Emu(tmp_path, auto_confirm=True).start()  # unlock: more records, same chain
    try:
        with e.client() as c:
            lines = c.audit_lines()
        assert audit.check_chain(lines) == []
        seqs = [r["seq"] for r in audit.parse(lines)]
        assert seqs == list(range(1, len(lines) + 1)) and len(lines) >= 6
        out = subprocess.run([AMANAT, "audit", "--verify", "--port", e.port], capture_output=True, text=True)
        assert out.returncode == 0 and "hash chain intact" in out.stdout
        # Edit one record in place: the chain breaks right after it.
        log = tmp_path / "screens.jsonl"
        kept = log.read_bytes().split(b"\n")
        assert b'"screen":"setup_mnemonic"' in kept[3]
        kept[3] = kept[3].replace(b'"answer":"text"', b'"answer":"approve"')
        log.write_bytes(b"\n".join(kept))
        out = subprocess.run([AMANAT, "audit", "--verify", "--port", e.port], capture_output=True, text=True)
        assert out.returncode == 1 and "record 5 (seq 5): the record before it was changed" in out.stderr
    finally:
        e.stop()


def test_a_record_torn_by_a_power_cut_is_told_at_the_next_start(tmp_path):
    from amanat import audit

    e = Emu(tmp_path, mnemonic=MNEMONIC, auto_confirm=True).start()
    e.stop()
    log = tmp_path / "screens.jsonl"
    whole = log.read_bytes()
    torn = b'{"screen": "review_tx", "title": "Send bitcoin?", "answer": "appr'
    log.write_bytes(whole + torn)  # what a cut in the middle of an append leaves
    e = Emu(tmp_path, auto_confirm=True).start()
    try:
        out = subprocess.run([AMANAT, "audit", "--json", "--verify", "--port", e.port], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        shown = json.loads(out.stdout)
        assert shown["chain"]["ok"]
        names = [r["screen"] for r in shown["records"]]
        n = names.index("power_loss")
        assert names[n - 1] == "(torn by a power loss)"
        lost = shown["records"][n]
        assert lost["torn_bytes"] == len(torn) and lost["seq"] == shown["records"][n - 2]["seq"] + 1
        assert log.read_bytes().startswith(whole + torn + b"\n")  # kept as it was, on its own line
        table = subprocess.run([AMANAT, "audit", "--port", e.port], capture_output=True, text=True).stdout
        assert "power_loss" in table and "hash chain intact" in table
    finally:
        e.stop()

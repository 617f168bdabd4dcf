"""The PIN through the command line: a restart boots locked, `amanat
emulator unlock` types a PIN; wrong ones count (in flash, before the
check), each from the third on makes the device wait longer by its own
clock (--fast-clock: 100 times shorter), a restart does not skip the wait,
and the tenth erases the seed for good."""

import json
import os
import subprocess
import sys

from amanat import emulator
from amanat.client import Client
from amanat.errors import DeviceError
from e2e_support import MNEMONIC

import pytest

AMANAT = os.path.join(os.path.dirname(sys.executable), "amanat")


def amanat(*args):
    return subprocess.run([AMANAT, *args], capture_output=True, text=True, timeout=120)


def start(state, *args):
    out = amanat("emulator", "start", "--state", str(state), "--detach", "--fast-clock", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def unlock(state, pin):
    out = amanat("emulator", "unlock", "--state", str(state), "--pin", pin)
    return out.returncode, json.loads(out.stdout), out.stderr


def test_locked_restart_wrong_pins_delays_and_unlock(tmp_path):
    state = tmp_path / "dev"
    assert start(state, "--mnemonic", MNEMONIC, "--pin", "2468")["locked"] is False
    emulator.stop(state)
    rec = start(state)  # no --pin: it waits at its PIN prompt
    try:
        assert rec["locked"] is True and rec["fingerprint"] is None
        with Client(rec["port"]) as c:
            with pytest.raises(DeviceError) as e:
                c.get_xpub("m/84h/1h/0h")
            assert e.value.name == "NOT_READY"
        outcomes = [unlock(state, "1111") for _ in range(3)]
        assert [(code, r["outcome"], r["left"]) for code, r, _ in outcomes] == [
            (7, "wrong", 9), (7, "wrong", 8), (7, "wrong", 7)]
        assert [r["delay_s"] for _, r, _ in outcomes] == [0, 0, 2]  # from the third: 2, 4, 8 ... s
        assert "7 attempts left; the next try in 2 s" in outcomes[2][2]
    finally:
        emulator.stop(state)
    # A restart does not skip the wait: the device shows it again at boot.
    rec = start(state)
    try:
        screens = [json.loads(line) for line in (state / "screens.jsonl").read_text().splitlines()]
        assert [s["screen"] for s in screens].count("unlock_pin") == 3  # the three wrong ones (answered screens)
        code, r, _ = unlock(state, "2468")
        assert (code, r["outcome"]) == (0, "unlocked")
        with Client(rec["port"]) as c:
            assert c.info()["locked"] is False
    finally:
        emulator.stop(state)


def test_the_tenth_wrong_pin_erases_the_seed(tmp_path):
    state = tmp_path / "dev"
    start(state, "--mnemonic", MNEMONIC, "--pin", "2468")
    emulator.stop(state)
    start(state)
    try:
        results = [unlock(state, "1111")[1] for _ in range(10)]
        assert [r["left"] for r in results[:9]] == list(range(9, 0, -1))
        assert results[9] == {"outcome": "wiped", "left": 0, "delay_s": 0}
        assert max(r["delay_s"] for r in results) == 128
        with Client(emulator.read_record(state)["port"]) as c:
            assert c.info()["initialized"] is False
        late = amanat("emulator", "unlock", "--state", str(state), "--pin", "2468")
    finally:
        emulator.stop(state)
    assert late.returncode != 0 and "not set up" in late.stderr
    # the trail tells it: ten wrong PINs, the last one erasing, then the erase itself
    records = [json.loads(line) for line in (state / "screens.jsonl").read_text().splitlines() if line]
    pins = [r for r in records if r["screen"] == "pin"]
    assert [r["outcome"] for r in pins[-10:]] == ["wrong"] * 9 + ["wiped"]
    wiped = [r for r in records if r["screen"] == "wiped"]
    assert len(wiped) == 1 and wiped[0]["seq"] > pins[-1]["seq"] and "PIN" in wiped[0]["reason"]
    # nothing of the old seed is left in the flash image: no record, and the
    # entropy is nowhere in the bytes (littlefs may keep freed blocks)
    from embit import bip39

    image = (state / "flash.img").read_bytes()
    assert bip39.mnemonic_to_bytes(MNEMONIC) not in image

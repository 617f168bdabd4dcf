"""A seed born on the device: its RNG mixed with dice rolls if the officer
adds them, the words shown page by page on the device's screen alone (never
in the trail, never sent to the host), checked back at random positions
before setup goes on."""

import json

import pytest
from embit import bip32, bip39

from amanat import emulator
from amanat.client import Client
from e2e_support import Emu


def create(e, words24, dice, mistakes=0, host=True):
    """Drive the device's create flow over DebugLink; the words it showed."""
    with e.debuglink() as dl:
        dl.wait_screen("setup_create")
        dl.approve()
        dl.wait_screen("create_length")
        dl.approve() if words24 else dl.reject()
        dl.wait_screen("create_shamir")
        dl.reject()
        dl.wait_screen("create_dice")
        if dice:
            dl.approve()
            screen = dl.wait_screen("create_rolls")
            assert ("at least %d" % (99 if words24 else 50)) in screen["lines"][0]
            dl.type_text("3" * 10)  # too few: asked again
            screen = dl.wait_screen("create_rolls")
            for _ in range(100):
                screen = dl.screen()
                if screen.get("error"):
                    break
            assert "10 rolls" in screen["error"]
            dl.type_text("".join(str(1 + i % 6) for i in range(120)))
        else:
            dl.reject()
        while True:
            words = []
            while True:
                screen = dl.wait_screen(("show_words", "check_word"))
                if screen["screen"] == "check_word":
                    break
                words += screen["words"]
                assert screen["lines"][0].startswith("%d. " % (screen["first"] + 1))
                if host:  # (unless another program holds the line)
                    with Client(e.port) as c:
                        assert c.t.call("prompt") == {"prompt": None}  # the words are for the device's screen alone
                dl.approve()
                dl.wait_screen(("show_words", "check_word"))
                for _ in range(100):  # the next page, not the one just approved
                    s = dl.screen()
                    if s and (s["screen"] != "show_words" or s["first"] != screen["first"]):
                        break
            asked = []
            for _ in range(3):
                screen = dl.wait_screen(("check_word", "backup_mismatch", "setup_pin"))
                if screen["screen"] != "check_word":
                    break
                pos = screen["position"]
                asked.append(pos)
                wrong = mistakes > 0
                dl.type_text("zoo" if wrong and words[pos - 1] != "zoo" else words[pos - 1])
                if wrong:
                    mistakes -= 1
                    dl.wait_screen("backup_mismatch")
                    dl.approve()  # the words again
                    break
                for _ in range(100):
                    s = dl.screen()
                    if s and not (s["screen"] == "check_word" and s["position"] == pos):
                        break
            else:
                assert len(set(asked)) == 3
                break
            if dl.screen() and dl.screen()["screen"] == "setup_pin":
                break
        check = finish_setup(dl)
    return words, check


def finish_setup(dl, pin="2468"):
    """The PIN twice, no passphrase, the fingerprint approved: its check screen."""
    for name, text in (("setup_pin", pin), ("setup_pin_confirm", pin), ("setup_passphrase", "")):
        dl.wait_screen(name)
        dl.type_text(text)
    check = dl.wait_screen("setup_check")
    dl.approve()
    return check


@pytest.mark.parametrize("words24, dice", [(False, False), (True, True)])
def test_a_seed_created_on_the_device(tmp_path, words24, dice):
    e = Emu(tmp_path).start()  # fresh: it waits at its setup
    try:
        words, check = create(e, words24, dice, mistakes=1)
        mnemonic = " ".join(words)
        assert len(words) == (24 if words24 else 12) and bip39.mnemonic_is_valid(mnemonic)
        fp = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(mnemonic)).my_fingerprint.hex()
        assert check["fingerprint"] == fp
        with Client(e.port) as c:
            for _ in range(200):
                if not c.info()["locked"]:
                    break
            assert bytes(c.info()["fingerprint"]).hex() == fp
    finally:
        e.stop()
    trail = (tmp_path / "screens.jsonl").read_text()
    shown = [json.loads(line) for line in trail.splitlines() if '"show_words"' in line]
    assert shown and all("words" not in s and "lines" not in s for s in shown)
    for k, w in enumerate(words):  # no word of the new seed in the trail, as listed or in a row
        assert f"{k + 1}. {w}" not in trail
        if k:
            assert f"{words[k - 1]} {w}" not in trail
    assert "backup_mismatch" in trail  # the wrong word was caught, the words shown again
    e = Emu(tmp_path, pin="2468").start()  # and it opens again with its PIN
    try:
        assert e.rec["fingerprint"] == fp
    finally:
        e.stop()


def test_a_seed_created_as_slip39_shares(tmp_path):
    """2-of-3 shares made on the device, each shown and checked back; any two
    recover the device's wallet (the master secret is the BIP32 seed), also
    with the official reference's semantics (signer/slip39.py passes its vectors)."""
    import itertools
    import sys

    from amanat import paths

    sys.path.insert(0, str(paths.firmware_dir()))
    from conftest import firmware_on_cpython

    firmware_on_cpython()
    from signer import slip39

    e = Emu(tmp_path).start()
    try:
        with e.debuglink() as dl:
            dl.wait_screen("setup_create")
            dl.approve()
            dl.wait_screen("create_length")
            dl.reject()  # 128 bits: shares of 20 words
            dl.wait_screen("create_shamir")
            dl.approve()
            dl.wait_screen("create_count")
            dl.type_text("3")
            dl.wait_screen("create_threshold")
            dl.type_text("2")
            dl.wait_screen("create_dice")
            dl.reject()
            shares = {}
            while True:
                screen = dl.wait_screen(("show_share", "check_word", "setup_pin"))
                if screen["screen"] == "setup_pin":
                    break
                if screen["screen"] == "show_share":
                    shares.setdefault(screen["share"], {})[screen["first"]] = screen["words"]
                    dl.approve()
                    key = (screen["share"], screen["first"])
                else:
                    words = [w for _, part in sorted(shares[screen["share"]].items()) for w in part]
                    dl.type_text(words[screen["position"] - 1])
                    key = (screen["share"], -screen["position"])
                for _ in range(200):  # the next screen
                    s = dl.screen()
                    if s and (s["screen"] == "setup_pin" or (s.get("share"), s.get("first", -s.get("position", 0))) != key):
                        break
            check = finish_setup(dl)
    finally:
        e.stop()
    mnemonics = [" ".join(w for _, part in sorted(pages.items()) for w in part) for _, pages in sorted(shares.items())]
    assert len(mnemonics) == 3 and all(len(m.split()) == 20 for m in mnemonics)
    for pair in itertools.combinations(mnemonics, 2):
        seed = slip39.combine(list(pair))
        assert bip32.HDKey.from_seed(seed).my_fingerprint.hex() == check["fingerprint"]
    trail = (tmp_path / "screens.jsonl").read_text()
    for m in mnemonics:
        words = m.split()
        assert not any(f"{a} {b}" in trail for a, b in zip(words, words[1:]))


def test_the_command_line_follows_the_setup_and_reports_it(tmp_path):
    import os
    import subprocess
    import sys

    amanat = os.path.join(os.path.dirname(sys.executable), "amanat")
    e = Emu(tmp_path).start()
    try:
        p = subprocess.Popen([amanat, "device", "setup", "--words", "12", "--port", e.port, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = p.stderr.readline()  # it has looked at the device and says what to do
        assert first.startswith("On the device:"), first
        for _ in range(30):  # ... and shows the screen the device waits on
            line = p.stderr.readline()
            first += line
            if line.startswith("device: Set up: Create a new seed"):
                break
        words, check = create(e, False, False, host=False)
        out, err = p.communicate(timeout=60)
        err = first + err
        assert p.returncode == 0, err
        assert json.loads(out) == {"fingerprint": check["fingerprint"], "network": "regtest"}
        assert "Create a new seed on this device? approve" in err and "24 words? reject (12 words)" in err
        assert "\ndevice: Set up: Create a new seed" in err  # the yes/no screens, as it saw them
        assert not any(w in err.split() for w in words if len(w) > 4)  # the words stay on the device
        again = subprocess.run([amanat, "device", "setup", "--port", e.port], capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 8 and "already set up" in again.stderr
    finally:
        e.stop()


def test_the_command_line_follows_a_recovery(tmp_path):
    import os
    import subprocess
    import sys

    from e2e_support import MNEMONIC, restore_by_hand

    amanat = os.path.join(os.path.dirname(sys.executable), "amanat")
    e = Emu(tmp_path).start()
    try:
        p = subprocess.Popen([amanat, "device", "recover", "--port", e.port], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        seen = ""
        for _ in range(30):
            line = p.stderr.readline()
            seen += line
            if line.startswith("device: Set up"):
                break
        assert "Recover from SLIP39 shares? reject, then type the recovery words" in seen
        with e.debuglink() as dl:
            restore_by_hand(dl, MNEMONIC, "2468")
            dl.wait_screen("setup_check")
            dl.approve()
        out, err = p.communicate(timeout=60)
    finally:
        e.stop()
    fp = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC)).my_fingerprint.hex()
    assert p.returncode == 0, err
    assert f"fingerprint {fp}" in out

"""The two-button text entry (firmware/signer/text_entry.py).

Random key sequences under hypothesis on CPython; scripted typing (a
mnemonic, PINs, passphrases, deleting) on CPython and, the same script, under
the real MicroPython; and the emulator taking the keys over DebugLink.
"""

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amanat import mpy
from conftest import VECTORS, firmware_on_cpython

firmware_on_cpython()
from embit import bip39  # noqa: E402
from embit.wordlists.bip39 import WORDLIST  # noqa: E402
from embit.wordlists.slip39 import SLIP39_WORDS  # noqa: E402
from signer import slip39, text_entry  # noqa: E402
from signer.text_entry import TextEntry  # noqa: E402

MNEMONIC = "usage scrap plug noble deny corn permit stage tennis ceiling ranch hockey"
EVENTS = ("next", "prev", "select", "delete")
PRINTABLE = {chr(c) for c in range(32, 127)}

# Runs as it is on CPython and under MicroPython: typing the way an officer
# would, reading the choice under the cursor and pressing "next" until it is
# the one wanted.
SCRIPT = r'''
def take(e, want):
    for _ in range(120):
        if e.choice() == want:
            return e.handle("select")
        e.handle("next")
    raise AssertionError("no choice %r on the wheel: %r" % (want, e.lines()))


def word_so_far(e):
    return e.lines()[0].split(": ")[1][:-1]


def type_words(e, words, done=True):
    """The letters each word needs (after what was filled in), then NEXT or
    DONE; returns how many selects it took."""
    selects = 0
    words = words.split()
    for i, w in enumerate(words):
        while word_so_far(e) != w:
            take(e, w[len(word_so_far(e))])
            selects += 1
        if i < len(words) - 1 or done:
            r = take(e, "DONE" if i == len(words) - 1 else "NEXT")
            selects += 1
    return selects


def type_text(e, s):
    """Characters, switching pages of the wheel as needed."""
    pages = ("abc", "ABC", "123", "#+=")
    for ch in s:
        want = "SPC" if ch == " " else ch
        page = 0 if "a" <= ch <= "z" else 1 if "A" <= ch <= "Z" else 2 if "0" <= ch <= "9" else 3
        for _ in range(60):
            if e.choice() == want:
                break
            e.handle("next")
        else:
            take(e, pages[page])
        take(e, want)


def widest(e, out):
    for line in e.lines():
        out[0] = max(out[0], len(line))


def scenarios(TextEntry):
    res = {}
    # a 12-word mnemonic, autocompleted
    e = TextEntry("words")
    res["mnemonic_selects"] = type_words(e, MNEMONIC)
    res["mnemonic"] = [e.done, e.value.decode()]
    v = e.value
    e.wipe()
    res["wiped"] = [len(e.value), bytes(v) == MNEMONIC.encode()]

    # letters filled in, and deleting
    e = TextEntry("words")
    seen = []
    for ch in "aba":
        take(e, ch)
        seen.append(e.lines()[0])
    e.handle("delete")  # "abandon": back to "ab", where the officer chose
    seen.append(e.lines()[0])
    take(e, "o")
    seen.append(e.lines())  # about, above
    take(e, "u")
    take(e, "NEXT")
    seen.append(e.lines()[0])
    e.handle("delete")  # back into the word before, whole
    seen.append(e.lines()[0])
    take(e, "DEL")
    seen.append(e.lines()[0])
    res["word_delete"] = seen

    # a wrong checksum: refused, the words kept to be corrected
    e = TextEntry("words")
    type_words(e, " ".join(["abandon"] * 12))
    res["bad_checksum"] = [e.done, e.lines()[0]]
    e.handle("next")
    e.handle("prev")
    e.handle("delete")
    type_words(e, "about")
    res["corrected"] = [e.done, e.value.decode()]

    # 24 words: no NEXT after the last
    e = TextEntry("words")
    type_words(e, " ".join(["abandon"] * 23 + ["art"]), done=False)
    choices = []
    for _ in range(8):
        choices.append(e.choice())
        e.handle("next")
    res["last_word_choices"] = choices
    take(e, "DONE")
    res["24_words"] = [e.done, len(e.value.split())]

    # a PIN: too short is refused; masked; the wheel shows one digit
    e = TextEntry("pin")
    w = [0]
    for d in "258":
        take(e, d)
        widest(e, w)
    res["pin_short"] = [take(e, "DONE"), e.lines()[0]]
    take(e, "1")
    e.handle("delete")
    take(e, "0")
    res["pin_lines"] = e.lines()[0]
    res["pin"] = [take(e, "DONE"), e.value.decode(), w[0]]
    e = TextEntry("pin")
    for d in "123456789012":
        take(e, d)
    take(e, "7")  # a 13th digit is not taken
    res["pin_max"] = [e.value.decode(), e.lines()[0]]

    # passphrases
    e = TextEntry("text")
    e.handle("prev")  # DONE is one step back from the start
    res["empty"] = [e.choice(), e.handle("select"), len(e.value)]
    e = TextEntry("text")
    type_text(e, "Tr0ub4dor &3")
    take(e, "DEL")
    type_text(e, "3!")
    res["text_lines"] = e.lines()[0]
    res["text"] = [take(e, "DONE"), e.value.decode()]
    return res
'''

EXPECTED = {
    "mnemonic": [True, MNEMONIC],
    "wiped": [0, True],
    "word_delete": ["1: a_", "1: ab_", "1: abandon_", "1: ab_", ["1: abo_", "DEL [u] v"], "2: _", "1: about_",
                    "1: abo_"],
    "bad_checksum": [False, "Bad checksum"],
    "corrected": [True, " ".join(["abandon"] * 11 + ["about"])],
    "24_words": [True, 24],
    "pin_short": [False, "4-12 digits"],
    "pin_lines": "****_",
    "pin": [True, "2580", 7],
    "pin_max": ["123456789012", "************"],
    "empty": ["DONE", True, 0],
    "text_lines": "*************_",
    "text": [True, "Tr0ub4dor &3!"],
}


def _check(res):
    for name, want in EXPECTED.items():
        assert res[name] == want, name
    # autocompletion: 44 letters chosen of 63, then 11 NEXT and DONE
    assert res["mnemonic_selects"] == 56
    choices = res["last_word_choices"]  # after the 24th word ("art", or artist...)
    assert choices[:5] == ["DONE", "e", "i", "w", "DEL"] and "NEXT" not in choices


def test_scripted_typing_on_cpython():
    ns = {"MNEMONIC": MNEMONIC}
    exec(SCRIPT, ns)
    _check(ns["scenarios"](TextEntry))


def test_scripted_typing_under_micropython():
    code = ("import json\nfrom signer.text_entry import TextEntry\nMNEMONIC = %r\n" % MNEMONIC + SCRIPT
            + "\nprint(json.dumps(scenarios(TextEntry)))\n")
    (res,) = mpy.run_json(code, timeout=60)
    _check(res)


# ---- random keys


def _check_state(e):
    lines = e.lines()
    assert len(lines) == 2
    for line in lines:
        assert isinstance(line, str) and len(line) <= 15 and set(line) <= PRINTABLE
    value = bytes(e.value)
    text = value.decode("ascii")
    if e.kind == "pin":
        assert len(value) <= 12 and text.isdigit() or not text
        assert set(lines[0]) <= {"*", "_"} or lines[0] == "4-12 digits"
        assert sum(c.isdigit() for c in lines[1]) <= 1  # only the digit under the cursor
    elif e.kind == "text":
        assert len(value) <= text_entry.TEXT_MAX and set(text) <= PRINTABLE
        assert set(lines[0]) <= {"*", "_"} or lines[0] == "%d chars_" % len(value)
    elif e.kind == "dice":
        assert len(value) <= text_entry.DICE_MAX and set(text) <= set("123456")
        assert lines[0] == "%d rolls_" % len(value)
    elif e.kind == "number":
        assert len(value) <= 2 and set(text) <= set("0123456789") and lines[0] == text + "_"
    else:
        wordlist, most = {"words": (WORDLIST, 24), "share": (SLIP39_WORDS, 33), "word": (WORDLIST, 1),
                          "share_word": (SLIP39_WORDS, 1)}[e.kind]
        words = text.split(" ")
        assert len(words) <= most and all(w.isalpha() and w.islower() for w in words[:-1])
        assert all(w in wordlist for w in words[:-1])
        assert any(w.startswith(words[-1]) for w in wordlist)
    return value


def _run(e, events):
    _check_state(e)
    for ev in events:
        if e.handle(ev):
            value = _check_state(e)
            if e.kind == "pin":
                assert 4 <= len(value) <= 12
            elif e.kind == "words":
                bip39.mnemonic_to_bytes(value.decode())  # a valid mnemonic, checksum and all
            elif e.kind == "share":
                slip39.parse_share(value.decode())  # a share whose checksum holds
            elif e.kind == "word":
                assert value.decode() in WORDLIST
            elif e.kind == "share_word":
                assert value.decode() in SLIP39_WORDS
            assert e.handle("next") is True and bytes(e.value) == value  # done stays done
            break
        _check_state(e)
    e.wipe()
    assert bytes(e.value) == b"" and not any(e._buf)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(text_entry.KINDS), events=st.lists(st.sampled_from(EVENTS), max_size=250),
       rnd=st.randoms(use_true_random=False))
def test_any_keys(kind, events, rnd):
    _run(TextEntry(kind, rand=rnd.randrange), events)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(text_entry.KINDS), n=st.integers(0, 600), weights=st.lists(st.integers(1, 9), min_size=4,
       max_size=4), rnd=st.randoms(use_true_random=False))
def test_long_key_walks(kind, n, weights, rnd):
    """Long walks, leaning to some keys: deep into a mnemonic, a full PIN."""
    events = rnd.choices(EVENTS, weights=weights, k=n)
    _run(TextEntry(kind, rand=rnd.randrange), events)


@given(st.lists(st.sampled_from(("next", "select", "select", "select")), max_size=400))
def test_long_passphrase_stops_at_the_limit(events):
    e = TextEntry("text")
    for ev in events:
        if e.handle(ev):
            break
    assert len(e.value) <= text_entry.TEXT_MAX


def test_unknown_kind():
    with pytest.raises(ValueError):
        TextEntry("emoji")


# ---- the emulator: the same keys over DebugLink


def test_debuglink_keys_set_up_the_emulator(tmp_path):
    from amanat.errors import DeviceError
    from e2e_support import Emu

    e = Emu(tmp_path / "emu").start()  # no mnemonic: left at the setup screen
    try:
        with e.debuglink() as dl:
            call = dl.t.call

            def take(want):
                for _ in range(40):
                    if call("debug_state")["input"][1].split()[1] == want:
                        return call("debug_key", {"key": "select"})
                    dl.key("next")
                raise AssertionError(want)

            dl.wait_screen("setup_create")

            dl.reject()

            dl.wait_screen("setup_kind")
            dl.reject()
            dl.wait_screen("setup_mnemonic")
            dl.type_text(MNEMONIC)  # the whole text at once still works
            for screen in ("setup_pin", "setup_pin_confirm"):
                dl.wait_screen(screen)
                assert call("debug_state")["input"][0] == "_"
                for d in "1357":
                    take(d)
                assert call("debug_state")["input"][0] == "****_"
                take("DONE")
            dl.wait_screen("setup_passphrase")
            with pytest.raises(DeviceError, match="key must be"):
                call("debug_key", {"key": "up"})
            call("debug_key", {"key": "prev"})
            call("debug_key", {"key": "select"})
            check = dl.wait_screen("setup_check")
            assert len(check["fingerprint"]) == 8
            dl.approve()
            with e.client() as c:
                for _ in range(100):
                    info = c.info()
                    if not info["locked"]:
                        break
                    time.sleep(0.05)
                assert not info["locked"] and info["initialized"]
            assert call("debug_state")["input"] is None
            with pytest.raises(DeviceError, match="no text prompt"):
                dl.key("next")
    finally:
        e.stop()
    screens = [s for s in e.screens() if "answer" in s]  # the screens, not the device's own records
    assert [r["screen"] for r in e.screens()] == ["boot"] + [s["screen"] for s in screens] + ["setup"]
    assert [s["screen"] for s in screens] == ["setup_create", "setup_kind", "setup_mnemonic", "setup_pin",
                                             "setup_pin_confirm", "setup_passphrase", "setup_check"]
    assert [s.get("entry") for s in screens] == [None, None, "words", "pin", "pin", "text", None]
    assert "1357" not in json.dumps(screens)


def _type_words(e, words, wordlist):
    """Type whole words on the wheel: for each letter, 'next' to it, 'select'."""
    for k, w in enumerate(words):
        while e.lines()[0].split(": ", 1)[1].rstrip("_") != w:
            typed = e.lines()[0].split(": ", 1)[1].rstrip("_")
            want = w[len(typed)]
            while e.choice() != want:
                e.handle("next")
            e.handle("select")
        if k < len(words) - 1:
            while e.choice() != "NEXT":
                e.handle("next")
            e.handle("select")


def test_a_slip39_share_is_typed_on_the_wheel_and_its_checksum_checked():
    import json

    case = json.loads((VECTORS / "slip39_vectors.json").read_text())[0]
    words = case[1][0].split()
    e = TextEntry("share")
    _type_words(e, words, SLIP39_WORDS)
    assert e.choice() == "DONE" and e.handle("select")
    assert bytes(e.value).decode() == " ".join(words)
    bad = TextEntry("share")
    _type_words(bad, words[:-1] + ["academic" if words[-1] != "academic" else "acid"], SLIP39_WORDS)
    while bad.choice() != "DONE":
        bad.handle("next")
    assert not bad.handle("select") and bad.lines()[0] == "Bad checksum"

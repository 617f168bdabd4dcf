"""What the device shows of a message to sign determines the bytes signed
(screens.message_text): text and hex are told apart, control characters
show, the length is shown; checked by inverting the rendering."""

import re

from hypothesis import given
from hypothesis import strategies as st

from amanat import mpy
from conftest import firmware_on_cpython

firmware_on_cpython()
from signer import screens  # noqa: E402

UNESCAPE = {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\"}


def read_back(screen):
    """The bytes an officer reads off the screen's lines."""
    head, body = screen["lines"][0], screen["lines"][1]
    n = int(re.search(r"(\d+) bytes?", head).group(1))
    if head.startswith("Text message"):
        assert body[0] == '"' and body[-1] == '"'
        out, text, i = b"", body[1:-1], 0
        while i < len(text):
            if text[i] == "\\":
                out += UNESCAPE[text[i + 1]]
                i += 2
            else:
                out += text[i].encode()
                i += 1
    else:
        assert head.startswith("Binary message (not text)")
        out = bytes.fromhex(body)
    assert len(out) == n
    return out


messages = st.one_of(st.binary(max_size=80), st.text(max_size=40).map(lambda t: t.encode()),
                     st.sampled_from([b"hex: 41", b"\x41", b"a\\nb", b"a\nb", b" x ", b"x", b"\xff", b"hex: ff"]))


@given(messages)
def test_the_screen_gives_back_the_message(message):
    screen = screens.sign_message("m/84h/1h/0h/0/0", "bcrt1q...", message, False)
    assert read_back(screen) == message
    assert screen["length"] == len(message)


@given(messages, messages)
def test_two_messages_never_look_alike(a, b):
    if a != b:
        sa = screens.sign_message("m/0h", "x", a, True)
        sb = screens.sign_message("m/0h", "x", b, True)
        assert sa["lines"] != sb["lines"]


def test_what_used_to_look_the_same():
    text = screens.sign_message("m/84h/1h/0h/0/0", "a", b"hex: ff", False)["lines"][:2]
    binary = screens.sign_message("m/84h/1h/0h/0/0", "a", b"\xff", False)["lines"][:2]
    assert text == ["Text message, 7 bytes:", '"hex: ff"']
    assert binary == ["Binary message (not text), 1 byte, in hex:", "ff"]
    assert screens.message_text(b"line 1\nline 2\t\\") == ("text", "line 1\\nline 2\\t\\\\")
    assert screens.message_text("caf\u00e9".encode())[0] == "hex"  # beyond ASCII: hex, never a look-alike
    assert screens.message_text(b"a\x00b") == ("hex", "610062")
    assert screens.message_text("\u202e".encode())[0] == "hex"  # a direction override


def test_the_same_under_micropython():
    samples = [b"hex: ff", b"\xff", b"a\nb\\", b"", b"\x00\x7f", b" spaced "]
    code = """
import json
from signer import screens
out = []
for m in %r:
    out.append(list(screens.message_text(m)))
print(json.dumps(out))
""" % samples
    [got] = mpy.run_json(code)
    assert got == [list(screens.message_text(m)) for m in samples]

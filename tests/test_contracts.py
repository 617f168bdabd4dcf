"""The contracts between the parts, held together: docs/protocol.md, the
device's tables (methods, DebugLink methods, error codes), the host's
(answer checks, error names, DebugLink calls), and the board interface
(boards/board_base.py) that every board implements and the firmware keeps to.
"""

import ast
import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat import client, debuglink, descriptors, errors, paths, policy
from conftest import ROOT, firmware_on_cpython

firmware_on_cpython()
sys.path.insert(0, str(paths.boards_dir()))

from board_base import BoardBase  # noqa: E402
from signer import app, handlers, keyexpr, wallets  # noqa: E402
from signer import errors as device_errors  # noqa: E402

PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()


def _names(cell):
    return set(re.findall(r"`([a-z_0-9]+)`", cell))


def doc_table(after):
    """{method: (params, answer fields)} of the first method table after the heading `after`."""
    text = PROTOCOL[PROTOCOL.index(after) :]
    start = text.index("| method | params | answer |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        method, params, answer = [c.strip() for c in line.strip("|").split("|")]
        rows[_names(method).pop()] = (_names(params), _names(answer))
    return rows


METHODS = doc_table("## Methods")
DEBUG = doc_table("## DebugLink")


def test_the_documented_methods_are_the_devices():
    assert set(METHODS) == set(handlers.METHODS)
    for name, (fn, allowed) in handlers.METHODS.items():
        assert set(allowed) == METHODS[name][0], name


def test_the_host_checks_every_documented_answer():
    assert set(client.RESULTS) == set(METHODS)
    for name, (_, fields) in METHODS.items():
        assert set(client.RESULTS[name]) == fields, name


def test_the_documented_debuglink_is_the_emulators():
    assert set(DEBUG) == set(app.DEBUG_METHODS)
    for name, (fn, allowed) in app.DEBUG_METHODS.items():
        assert set(allowed) == DEBUG[name][0], name
    called = set(re.findall(r'call\("(debug_[a-z_]+)"', (ROOT / "host" / "amanat" / "debuglink.py").read_text()))
    assert called == set(DEBUG)
    assert debuglink.DebugLink  # the host's side of it


def test_error_codes_agree():
    section = PROTOCOL[PROTOCOL.index("## Error codes") : PROTOCOL.index("## Methods")]
    documented = {int(c): n for c, n in re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", section, re.M)}
    device = {code: cls.name for code, cls in device_errors.BY_CODE.items()}
    assert documented == device == errors.DeviceError.NAMES
    assert len(documented) == 14


# --- the board interface


def _board_classes():
    out = []
    for name in ("unix", "esp32"):
        tree = ast.parse((paths.board_dir(name) / "board.py").read_text())
        [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Board"]
        out.append(pytest.param(cls, id=name))
    return out


def _required():
    """The methods a board must implement: those BoardBase leaves to it."""
    tree = ast.parse((paths.boards_dir() / "board_base.py").read_text())
    [base] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BoardBase"]
    return {f.name for f in base.body if isinstance(f, ast.FunctionDef)
            and any(isinstance(s, ast.Raise) for s in f.body)}


@pytest.mark.parametrize("cls", _board_classes())
def test_every_board_implements_the_interface(cls):
    assert [b.id for b in cls.bases] == ["BoardBase"]
    defined = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
    assert _required() <= defined, _required() - defined
    assert {"mount_flash", "wait", "record_screen", "log"} <= _required()


def test_the_firmware_asks_the_board_only_for_the_interface():
    used = set()
    for path in (ROOT / "firmware").rglob("*.py"):
        used |= set(re.findall(r"\bboard\.([a-z_]+)", path.read_text()))
    used -= {"Board"}  # main.py: board.Board()
    assert used, "no board use found"
    missing = {name for name in used if not hasattr(BoardBase, name)}
    assert not missing, missing


# --- one rule per side, and the sides agree


@given(st.text(alphabet=st.characters(min_codepoint=0x1F, max_codepoint=0x7F), max_size=18))
def test_wallet_names_the_host_passes_are_the_devices(name):
    def ok(check, error):
        try:
            check(name)
            return True
        except error:
            return False

    assert ok(policy.check_name, policy.PolicyError) == ok(wallets.check_name, device_errors.BadParams)


@given(st.lists(st.tuples(st.integers(0, 2**31 + 5), st.sampled_from(["", "h", "'", "H", "x"])), max_size=9))
def test_a_path_the_device_reads_reads_the_same_on_the_host(steps):
    text = "/".join(["m"] + ["%d%s" % s for s in steps])
    try:
        path = keyexpr.parse_path(text)
    except device_errors.BadParams:
        # the host may read what the device refuses (H, depth); it sends only h notation
        return
    assert descriptors.parse_path(text) == path
    assert descriptors.normalize_path(text) == keyexpr.format_path(path)

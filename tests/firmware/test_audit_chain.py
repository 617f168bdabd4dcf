"""The device's audit trail (signer/audit.py) as the boards write it, read
back by the host's verifier (amanat.audit): the canonical form, a record
torn by a power cut at any byte, the bounded two files."""

import io
import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from amanat import audit as host_audit
from conftest import firmware_on_cpython

firmware_on_cpython()
from signer import audit  # noqa: E402


class FileBoard:
    """What a board does with the trail: two files, lines appended."""

    def __init__(self, root, capacity=1024 * 1024):
        self.root = str(root)
        self.audit_capacity = capacity

    def audit_files(self):
        return [self.root + "/screens.1.jsonl", self.root + "/screens.jsonl"]

    def record_screen(self, record, write):
        with open(self.root + "/screens.jsonl", "a") as f:
            write(f)
            f.write("\n")


def append(board, records, key=None):
    """A fresh Trail over the board's files (a start), then `records`."""
    trail = audit.Trail(board)
    trail.key = key
    lost = trail.power_loss_record()
    for rec in ([lost] if lost else []) + records:
        trail.append(rec)
    return trail


def lines(board):
    out = []
    for path in board.audit_files():
        if os.path.exists(path):
            out += [line for line in open(path, "rb").read().split(b"\n") if line]
    return out


def test_records_carry_their_format_and_chain(tmp_path):
    board = FileBoard(tmp_path)
    append(board, [{"screen": "a"}, {"screen": "b"}])
    t = append(board, [{"screen": "c"}], key="0a0b0c0d")
    recs = [json.loads(x) for x in lines(board)]
    assert [(r["screen"], r["seq"], r["format"], r["key"]) for r in recs] == [
        ("a", 1, 2, None), ("b", 2, 2, None), ("c", 3, 2, "0a0b0c0d")]
    assert host_audit.check_chain(lines(board)) == []
    assert t.head() == (3, host_audit.line_hash(lines(board)[-1])[:8])
    assert t.line_hash(2) == host_audit.line_hash(lines(board)[1]) and t.line_hash(9) is None


_text = st.text(st.characters(codec="utf-8"), max_size=20)
_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | _text,
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
                       max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_text, _values, max_size=6))
def test_the_device_writes_what_json_dumps_writes_canonically(record):
    out = io.StringIO()
    audit.dump(record, out)
    assert out.getvalue().encode() == host_audit.canonical(record)


def test_floats_and_bytes_have_no_canonical_form():
    for bad in (1.5, b"x", {1: "a"}):
        try:
            audit.dump({"v": bad}, io.StringIO())
        except ValueError:
            continue
        raise AssertionError("%r was written" % (bad,))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_a_record_torn_anywhere_is_told_and_skipped(tmp_path_factory, cut, before):
    board = FileBoard(tmp_path_factory.mktemp("trail"))
    path = board.audit_files()[1]
    append(board, [{"screen": "s%d" % i, "answer": "approve"} for i in range(before)])
    whole = open(path, "rb").read()
    append(board, [{"screen": "review_tx", "lines": ["x" * 50], "answer": "approve"}])
    data = open(path, "rb").read()
    cut = len(whole) + cut % (len(data) - len(whole))  # inside the last record, its newline excluded
    open(path, "wb").write(data[:cut])
    trail = append(board, [{"screen": "after"}])
    recs = host_audit.parse(lines(board))
    torn = host_audit.torn_lines(lines(board))
    if cut == len(whole):  # nothing of the record was written: nothing torn
        assert not torn and recs[-1]["seq"] == before + 1
        assert host_audit.check_chain(lines(board)) == []
        return
    assert torn == {before}
    lost = recs[before + 1]
    assert lost["screen"] == "power_loss" and lost["torn_bytes"] == cut - len(whole)
    assert lost["seq"] == before + 1  # the torn record's seq is taken again: it never was
    assert recs[-1]["screen"] == "after" and trail.seq == before + 2
    assert host_audit.check_chain(lines(board)) == []


def test_an_unexplained_or_misexplained_torn_line_breaks_the_chain(tmp_path):
    board = FileBoard(tmp_path)
    append(board, [{"screen": "a"}, {"screen": "b"}])
    open(board.audit_files()[1], "ab").write(b'{"screen":"c","ans')
    append(board, [{"screen": "d"}])
    good = lines(board)
    assert host_audit.check_chain(good) == []
    lost = json.loads(good[3])
    lost["torn_bytes"] += 1  # names another line
    edited = good[:3] + [host_audit.canonical(lost)] + good[4:]
    problems = host_audit.check_chain(edited)
    assert any("record 3: no seq/prev" in p for p in problems)


def test_a_newer_format_is_reported(tmp_path):
    board = FileBoard(tmp_path)
    append(board, [{"screen": "a"}])
    rec = json.loads(lines(board)[0])
    rec["format"] = 3
    assert host_audit.check_chain([host_audit.canonical(rec)]) == [
        "record 1 (seq 1): format 3; this amanat reads formats up to 2"]


def test_format_1_records_chain_into_format_2(tmp_path):
    """A device updated from a firmware that wrote json.dump's layout goes on
    with the same chain."""
    path = tmp_path / "screens.jsonl"
    old = json.dumps({"screen": "a", "format": 1, "seq": 1, "prev": host_audit.GENESIS}).encode()
    path.write_bytes(old + b"\n")
    board = FileBoard(tmp_path)
    append(board, [{"screen": "b"}])
    assert host_audit.check_chain(lines(board)) == []
    assert json.loads(lines(board)[1])["prev"] == host_audit.line_hash(old)


def test_the_trail_rotates_into_the_archive_and_fills_up_without_a_gap(tmp_path):
    board = FileBoard(tmp_path, capacity=2048)
    trail = append(board, [])
    n = 0
    while not trail.full():
        n += 1
        trail.append({"screen": "r", "n": n, "pad": "x" * 40})
        assert n < 100
    archive, current = board.audit_files()
    assert os.path.exists(archive) and trail.archive_last is not None
    assert trail.used() >= 2048 and trail.percent() >= 100
    assert host_audit.check_chain(lines(board)) == [] and len(lines(board)) == n
    # a start reads both files and goes on from the current one
    again = audit.Trail(board)
    assert (again.seq, again.prev, again.archive_last) == (trail.seq, trail.prev, trail.archive_last)
    # an export up to an earlier record frees nothing; one past the archive frees it
    assert again.free_exported(again.archive_last - 1) == 0 and os.path.exists(archive)
    size = os.path.getsize(archive)
    assert again.free_exported(again.seq) == size and not os.path.exists(archive)
    assert not again.full()
    again.append({"screen": "after"})
    rest = lines(board)
    assert host_audit.check_chain(rest) == []  # the chain goes on; it starts where the archive ended
    assert json.loads(rest[0])["seq"] == trail.archive_last + 1

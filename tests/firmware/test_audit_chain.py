"""The device's audit chain (signer/audit.py) as the boards write it, read
back by the host's checker (amanat.audit): formats, and a record torn by a
power cut at any byte."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from amanat import audit as host_audit
from conftest import firmware_on_cpython

firmware_on_cpython()
from signer import audit  # noqa: E402


def append(path, records):
    """What a board's record_screen does, for each record, with a fresh chain."""
    chain = audit.Chain([path])
    lost = chain.power_loss_record()
    for rec in ([lost] if lost else []) + records:
        chain.stamp(rec)
        with open(path, "a") as f:
            json.dump(rec, chain.wrap(f))
            f.write("\n")
        chain.written()
    return chain


def lines(path):
    return [line for line in open(path, "rb").read().split(b"\n") if line]


def test_records_carry_their_format_and_chain(tmp_path):
    path = str(tmp_path / "screens.jsonl")
    append(path, [{"screen": "a"}, {"screen": "b"}])
    append(path, [{"screen": "c"}])
    recs = [json.loads(x) for x in lines(path)]
    assert [(r["screen"], r["seq"], r["format"]) for r in recs] == [("a", 1, 1), ("b", 2, 1), ("c", 3, 1)]
    assert host_audit.check_chain(lines(path)) == []


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_a_record_torn_anywhere_is_told_and_skipped(tmp_path_factory, cut, before):
    path = str(tmp_path_factory.mktemp("trail") / "screens.jsonl")
    append(path, [{"screen": "s%d" % i, "answer": "approve"} for i in range(before)])
    whole = open(path, "rb").read()
    append(path, [{"screen": "review_tx", "lines": ["x" * 50], "answer": "approve"}])
    data = open(path, "rb").read()
    cut = len(whole) + cut % (len(data) - len(whole))  # inside the last record, its newline excluded
    open(path, "wb").write(data[:cut])
    chain = append(path, [{"screen": "after"}])
    recs = host_audit.parse(lines(path))
    torn = host_audit.torn_lines(lines(path))
    if cut == len(whole):  # nothing of the record was written: nothing torn
        assert not torn and recs[-1]["seq"] == before + 1
        assert host_audit.check_chain(lines(path)) == []
        return
    assert torn == {before}
    lost = recs[before + 1]
    assert lost["screen"] == "power_loss" and lost["torn_bytes"] == cut - len(whole)
    assert lost["seq"] == before + 1  # the torn record's seq is taken again: it never was
    assert recs[-1]["screen"] == "after" and chain.seq == before + 2
    assert host_audit.check_chain(lines(path)) == []


def test_an_unexplained_or_misexplained_torn_line_breaks_the_chain(tmp_path):
    path = str(tmp_path / "screens.jsonl")
    append(path, [{"screen": "a"}, {"screen": "b"}])
    open(path, "ab").write(b'{"screen": "c", "ans')
    append(path, [{"screen": "d"}])
    good = lines(path)
    assert host_audit.check_chain(good) == []
    lost = json.loads(good[3])
    lost["torn_bytes"] += 1  # names another line
    edited = good[:3] + [json.dumps(lost).encode()] + good[4:]
    problems = host_audit.check_chain(edited)
    assert any("record 3: no seq/prev" in p for p in problems)


def test_a_newer_format_is_reported(tmp_path):
    path = str(tmp_path / "screens.jsonl")
    append(path, [{"screen": "a"}])
    rec = json.loads(lines(path)[0])
    rec["format"] = 2
    assert host_audit.check_chain([json.dumps(rec).encode()]) == [
        "record 1 (seq 1): format 2; this amanat reads formats up to 1"]

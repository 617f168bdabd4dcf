"""The audit trail's hash chain, checked on the host."""

import hashlib
import json

from amanat import audit


def chain(n):
    lines, prev = [], audit.GENESIS
    for i in range(1, n + 1):
        line = json.dumps({"screen": "s%d" % i, "answer": "approve", "seq": i, "prev": prev}).encode()
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    return lines


def test_intact():
    assert audit.check_chain(chain(5)) == []


def test_removed_record():
    lines = chain(5)
    del lines[2]
    problems = audit.check_chain(lines)
    assert any("(seq 4): follows seq 2" in p for p in problems)


def test_edited_record():
    lines = chain(5)
    lines[1] = lines[1].replace(b"approve", b"reject")
    assert audit.check_chain(lines) == ["record 3 (seq 3): the record before it was changed or removed"]


def test_rotated_trail_starts_mid_chain():
    assert audit.check_chain(chain(6)[3:]) == []


def test_unreadable_and_unchained_records():
    problems = audit.check_chain([b"not json", json.dumps({"screen": "x"}).encode()])
    assert len(problems) == 2


def test_announced_keys_are_the_setup_records_in_order():
    a, b = "02" + "11" * 32, "03" + "22" * 32
    records = [{"screen": "setup", "log_key": a}, {"screen": "review_tx", "log_key": "03" + "33" * 32},
               {"screen": "setup", "log_key": "zz" * 33}, {"screen": "setup", "log_key": a[:-2]},
               {"screen": "setup", "log_key": b}, {"screen": "setup", "log_key": a}]
    lines = [json.dumps(r).encode() for r in records] + [b"not json"]
    assert audit.announced_keys(lines) == [a, b]  # only setup records, well-formed, each once


def test_the_trail_table_tells_a_proof_and_a_wipe():
    from amanat.cli import _audit_detail

    proof = {"screen": "proof_of_reserves", "proof": {"coins": 3, "total_sat": 150_000_000, "message": "Reserve"}}
    assert _audit_detail(proof) == "3 coin(s), 1.50000000 BTC proven, message 'Reserve'"
    assert _audit_detail({"screen": "wiped", "reason": "the last PIN attempt was wrong"}) == (
        "seed erased: the last PIN attempt was wrong")

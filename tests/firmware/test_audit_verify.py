"""Checkpoints as the device signs them (handlers.audit_checkpoint, with the
host's anti-exfil entropy), and what the offline verifier (amanat.audit)
reports of each tampering: a removed, reordered or edited record, a
checkpoint forged with another key, a trail cut short."""

import json

import coincurve
import pytest

from amanat import anti_exfil as host_ae
from amanat import audit as host_audit
from conftest import firmware_on_cpython

firmware_on_cpython()
from device_loop import call, make_app  # noqa: E402
from signer import audit  # noqa: E402


def checkpoint(app, host_time="2026-12-05T10:00:00Z (host)"):
    rho = host_ae.new_entropy()
    first = call(app, "audit_checkpoint", anti_exfil="commit", commitment=host_ae.commitment(rho))["result"]
    if not first.get("opening"):
        return first
    second = call(app, "audit_checkpoint", _id=8, anti_exfil="reveal", entropy=rho, host_time=host_time)
    return second["result"]


@pytest.fixture
def trail(tmp_path):
    """(app, its log key, lines): records, a checkpoint, records, a checkpoint."""
    app = make_app(tmp_path)
    pub = app.log_key().key.sec()
    app.trail.key = audit.key_fingerprint(pub)
    for n in range(3):
        app.record({"screen": "note", "n": n})
    assert checkpoint(app)["signed"]
    for n in range(3, 6):
        app.record({"screen": "note", "n": n})
    res = checkpoint(app)
    assert res["signed"] and res["seq"] == 7 and res["record_seq"] == 8
    return app, pub, list(app.board.lines)


def test_an_intact_trail_verifies_with_a_summary(trail):
    app, pub, lines = trail
    rep = host_audit.verify(lines, [pub])
    assert rep.problems == []
    assert (rep.first_seq, rep.last_seq, rep.checkpoints, rep.unsigned) == (1, 8, 2, 0)
    assert rep.counts == {"note": 6, "checkpoint": 2}
    assert rep.last_checkpoint == {"seq": 8, "covers_seq": 7, "key": audit.key_fingerprint(pub),
                                   "host_time": "2026-12-05T10:00:00Z (host)"}
    assert rep.head == app.trail.prev
    cp = json.loads(lines[-1])
    assert host_ae.check(pub, host_audit.checkpoint_digest(7, cp["covers_head"]), bytes.fromhex(cp["ae_entropy"]),
                         bytes.fromhex(cp["ae_opening"]), bytes.fromhex(cp["sig"])) is None


def test_nothing_new_signs_nothing(trail):
    app, pub, lines = trail
    assert checkpoint(app) == {"seq": 8, "head": app.trail.prev, "signed": False}
    assert app.board.lines == lines


def test_a_removed_record_is_reported(trail):
    _, pub, lines = trail
    problems = host_audit.verify(lines[:2] + lines[3:], [pub]).problems
    assert "record 3 (seq 4): follows seq 2 (a record is missing or moved)" in problems


def test_reordered_records_are_reported(trail):
    _, pub, lines = trail
    problems = host_audit.verify(lines[:1] + [lines[2], lines[1]] + lines[3:], [pub]).problems
    assert "record 2 (seq 3): follows seq 1 (a record is missing or moved)" in problems


@pytest.mark.parametrize("at", range(0, 8))
def test_an_edited_byte_is_reported(trail, at):
    _, pub, lines = trail
    line = bytearray(lines[at])
    k = line.index(b'"n":') + 4 if b'"n":' in line else line.index(b'"sig":"') + 8
    line[k] = ord("9") if line[k] != ord("9") else ord("8")
    problems = host_audit.verify(lines[:at] + [bytes(line)] + lines[at + 1 :], [pub]).problems
    if at + 1 < len(lines):
        assert "record %d (seq %d): the record before it was changed or removed" % (at + 2, at + 2) in problems
    else:  # the last record: its checkpoint signature no longer verifies
        assert any("record 8 (seq 8): the checkpoint's signature does not verify" in p for p in problems)


def test_a_rewritten_tail_without_the_key_is_reported(trail):
    """Whoever holds the flash can rewrite the chain, but not sign it."""
    app, pub, lines = trail
    forged = [json.loads(x) for x in lines[:4]]
    forged.append({"screen": "note", "n": 99, "format": 2, "seq": 5, "prev": host_audit.line_hash(lines[3]),
                   "key": forged[0]["key"]})
    out = [host_audit.canonical(r) for r in forged]
    problems = host_audit.verify(out, [pub]).problems
    assert problems == ["1 record(s) after seq 3 are not covered by a valid checkpoint (export with "
                        "`amanat audit export`, which signs one first)"]


def test_a_checkpoint_forged_with_another_key_is_reported(trail):
    _, pub, lines = trail
    other = coincurve.PrivateKey(b"\x07" * 32)
    cp = json.loads(lines[3])
    cp["sig"] = other.sign(host_audit.checkpoint_digest(3, cp["covers_head"]), hasher=None).hex()
    forged = lines[:3] + [host_audit.canonical(cp)]
    problems = host_audit.verify(forged, [pub]).problems
    assert any("record 4 (seq 4): the checkpoint's signature does not verify under log key" in p for p in problems)
    # the same forgery naming the other key's fingerprint: not a key the auditor holds
    cp["key"] = host_audit.key_fingerprint(other.public_key.format())
    problems = host_audit.verify(lines[:3] + [host_audit.canonical(cp)], [pub]).problems
    assert "record 4 (seq 4): the checkpoint is signed by log key %s, not one given (--key)" % cp["key"] in problems
    # and with the auditor holding only another key, no checkpoint of this device passes
    assert any("not one given" in p for p in host_audit.verify(lines, [other.public_key.format()]).problems)


def test_a_truncated_trail_is_caught_by_the_paper_log(trail):
    _, pub, lines = trail
    head4 = host_audit.line_hash(lines[3])
    assert host_audit.verify(lines[:4], [pub], [(4, head4[:8])]).problems == []  # cut after a checkpoint: signed
    problems = host_audit.verify(lines[:4], [pub], [(8, host_audit.line_hash(lines[7])[:8])]).problems
    assert problems == ["the paper log has record 8 (head %s), but the trail ends at 4: records were cut off "
                        "the end" % host_audit.line_hash(lines[7])[:8]]
    assert host_audit.verify(lines, [pub], [(4, "deadbeef")]).problems == [
        "record 4's head is %s, the paper log says deadbeef" % head4[:8]]
    with pytest.raises(ValueError):
        host_audit.parse_expect("4:xyz")
    assert host_audit.parse_expect("4:" + head4[:8].upper()) == (4, head4[:8])


def test_two_exports_overlapping_join_and_disagreeing_are_told(trail):
    _, pub, lines = trail
    joined, problems = host_audit.join([lines[:5], lines[3:]])
    assert joined == lines and problems == []
    other = lines[3:4] + [host_audit.canonical(dict(json.loads(lines[4]), n=42))]
    assert host_audit.join([lines[:5], other])[1] == ["file 2: record seq 5 differs from the earlier file's"]


def test_a_second_round_after_the_trail_moved_is_refused(tmp_path):
    app = make_app(tmp_path)
    app.record({"screen": "note"})
    rho = host_ae.new_entropy()
    assert call(app, "audit_checkpoint", anti_exfil="commit", commitment=host_ae.commitment(rho))["result"]["opening"]
    app.record({"screen": "note"})
    err = call(app, "audit_checkpoint", _id=8, anti_exfil="reveal", entropy=rho)["error"]
    assert err["code"] == 9 and "the trail changed" in err["message"]
    # and entropy that does not open the commitment
    assert call(app, "audit_checkpoint", _id=9, anti_exfil="commit", commitment=host_ae.commitment(rho))["result"]
    err = call(app, "audit_checkpoint", _id=10, anti_exfil="reveal", entropy=b"\x01" * 32)["error"]
    assert err["code"] == 9 and "commitment" in err["message"]


def test_signing_waits_for_a_checkpoint_and_a_full_trail_refuses(tmp_path):
    app = make_app(tmp_path)
    for _ in range(audit.CHECKPOINT_EVERY):
        app.record({"screen": "note"})
    err = call(app, "set_limits", fee_percent_tenths=50, fee_max_sat=200_000)["error"]
    assert err["code"] == 14 and "checkpoint" in err["message"]
    assert checkpoint(app)["signed"]
    assert "result" in call(app, "set_limits", _id=9, fee_percent_tenths=50, fee_max_sat=200_000)
    app.trail.full = lambda: True
    err = call(app, "set_limits", _id=10, fee_percent_tenths=50, fee_max_sat=200_000)["error"]
    assert err["code"] == 13 and "export it" in err["message"]
    call(app, "set_limits", _id=11, fee_percent_tenths=50, fee_max_sat=200_000)
    refused = [r for r in app.board.screens if r["screen"] == "refused"]
    assert [r["code"] for r in refused] == ["TRAIL_FULL"]  # once a start, however often it is asked

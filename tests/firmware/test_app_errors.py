"""Whose fault an error is: the request loop (signer.app) on CPython, driven
through a board of the test's own (tests/firmware/device_loop.py).

A PSBT that does not parse is BAD_PSBT; a flash failure is STORAGE; a bug of
the firmware's is INTERNAL, logged on the board, and never reported to the
officer as their malformed PSBT. The device answers the next request.
"""

import pytest

from device_loop import a_psbt, call, make_app, upload
from signer import review


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


def test_a_good_psbt_signs(app):
    res = call(app, "sign_psbt", sha256=upload(app, a_psbt()))
    assert res["result"]["signatures"] == 1
    assert isinstance(res["result"]["review"]["fee_rate_tenths"], int)
    [shown] = [r for r in app.board.screens if r["screen"] == "review_tx"]
    assert shown["answer"] == "approve" and shown["fee_rate_tenths"] == res["result"]["review"]["fee_rate_tenths"]
    assert not _floats(shown) and not _floats(res)  # the wire and the screens carry no floats


def _floats(x):
    if isinstance(x, dict):
        return any(_floats(v) for v in x.values())
    if isinstance(x, list):
        return any(_floats(v) for v in x)
    return isinstance(x, float)


def test_a_psbt_that_does_not_parse_is_bad_psbt(app):
    res = call(app, "sign_psbt", sha256=upload(app, b"psbt\xff" + bytes(40)))
    assert res["error"]["code"] == 8 and "PSBT" in res["error"]["message"]


def test_a_bug_is_internal_logged_and_not_the_psbts_fault(app, monkeypatch):
    def bug(*a, **kw):
        raise KeyError("a bug of ours")

    monkeypatch.setattr(review.Reviewer, "run", bug)
    res = call(app, "sign_psbt", sha256=upload(app, a_psbt()))
    assert res["error"] == {"code": 12, "message": "internal error: KeyError"}
    assert any("KeyError" in line for line in app.board.logged)
    monkeypatch.undo()
    assert call(app, "ping")["result"] == {"busy": None}  # still up
    assert call(app, "sign_psbt", sha256=upload(app, a_psbt()))["result"]["signatures"] == 1


def test_a_flash_failure_is_storage(app, monkeypatch):
    def broken(*a, **kw):
        raise OSError(28, "no space left")

    monkeypatch.setattr(review.Reviewer, "run", broken)
    res = call(app, "sign_psbt", sha256=upload(app, a_psbt()))
    assert res["error"]["code"] == 11 and "flash failed" in res["error"]["message"]

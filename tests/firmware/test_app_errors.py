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
    assert call(app, "ping")["result"] == {"busy": None, "progress": None}  # still up
    assert call(app, "sign_psbt", sha256=upload(app, a_psbt()))["result"]["signatures"] == 1


def test_a_flash_failure_is_storage(app, monkeypatch):
    def broken(*a, **kw):
        raise OSError(28, "no space left")

    monkeypatch.setattr(review.Reviewer, "run", broken)
    res = call(app, "sign_psbt", sha256=upload(app, a_psbt()))
    assert res["error"]["code"] == 11 and "flash failed" in res["error"]["message"]


def test_ping_reports_progress_while_reviewing_and_signing(app):
    """A ping that arrives while the device works answers with its progress:
    inputs and outputs reviewed, then inputs signed, each [done, total]."""
    from device_loop import account, payee
    from signer import cbor, framing

    from amanat import txbuild

    acct = account()
    coins = [(acct, i, 10_000 + i) for i in range(6)]
    raw = txbuild.build_spend(coins, payee(), 20_000, 1_000, change=(acct, 1)).psbt.serialize()
    digest = upload(app, raw)
    ping = framing.encode(cbor.dumps({"id": 99, "method": "ping"}))
    line = app.board.serial
    reads = []

    def read_available():  # one ping each time the device looks at the line while it works
        reads.append(1)
        return ping if len(reads) % 2 else b""

    line.read_available = read_available
    app._serve(app.serial, cbor.dumps({"id": 7, "method": "sign_psbt", "params": {"sha256": digest}}), None)
    msgs = [cbor.loads(p) for p in framing.FrameReader().feed(bytes(line.outbox), 0)]
    pings = [m["result"] for m in msgs if m["id"] == 99]
    reviewing = [p["progress"] for p in pings if p["busy"] == "reviewing" and p["progress"]]
    signing = [p["progress"] for p in pings if p["busy"] == "signing" and p["progress"]]
    assert [d for d, _ in reviewing] == list(range(6 + 2)) and {t for _, t in reviewing} == {8}
    assert [d for d, _ in signing] == list(range(1, 7)) and {t for _, t in signing} == {6}
    assert msgs[-1]["id"] == 7 and msgs[-1]["result"]["signatures"] == 6

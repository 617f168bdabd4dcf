"""A prompt never outlives its host: `cancel`, and a host that goes silent,
take a review down as cancelled; a request meanwhile is BUSY and says what
to do. The request loop on CPython (tests/firmware/device_loop.py)."""

from device_loop import a_psbt, call, make_app, upload
from signer import cbor, framing, ui


def frame(rid, method, **params):
    return framing.encode(cbor.dumps({"id": rid, "method": method, "params": params}))


def answers(app):
    out = bytes(app.board.serial.outbox)
    app.board.serial.outbox.clear()
    return {m["id"]: m for m in map(cbor.loads, framing.FrameReader().feed(out, 0))}


def test_cancel_takes_the_review_down_and_busy_says_what_to_do(tmp_path):
    sent = []

    def officer_away(screen):
        # While the review waits: another request, then the host's cancel.
        if screen["screen"] == "review_tx" and not sent:
            sent.append(1)
            app.board.serial.inbox = frame(20, "get_xpub", path="m/84h/1h/0h") + frame(21, "cancel")
        return None

    app = make_app(tmp_path, decide=officer_away)
    digest = upload(app, a_psbt())
    app._serve(app.serial, cbor.dumps({"id": 7, "method": "sign_psbt", "params": {"sha256": digest}}), None)
    got = answers(app)
    busy = got[20]["error"]
    assert busy["code"] == 5 and "review_tx waits for the officer" in busy["message"]
    assert "answer or reject it on the device" in busy["message"]
    assert got[21]["result"] == {"cancelled": True}
    assert got[7]["error"] == {"code": 7, "message": "cancelled: the host cancelled the request"}
    [record] = [r for r in app.board.screens if r["screen"] == "review_tx"]
    assert record["answer"] == "cancelled" and record["cancelled"] == "the host cancelled the request"
    assert app.ui.current is None and app.busy is None
    assert call(app, "cancel")["result"] == {"cancelled": False}  # idle: nothing to cancel


def test_a_silent_host_loses_its_prompt(tmp_path):
    app = make_app(tmp_path, decide=lambda screen: None)  # nobody presses anything
    clock = [0]

    def ticks():
        clock[0] += 500  # half a second per look at the clock
        return clock[0]

    app.board.ticks_ms = ticks
    digest = upload(app, a_psbt())
    res = call(app, "sign_psbt", sha256=digest)
    assert res["error"]["code"] == 7 and "host stopped waiting" in res["error"]["message"]
    assert clock[0] >= ui.HOST_GONE_MS
    [record] = [r for r in app.board.screens if r["screen"] == "review_tx"]
    assert record["answer"] == "cancelled"


def test_a_pinging_host_keeps_its_prompt(tmp_path):
    state = {"looks": 0}

    def decide(screen):
        state["looks"] += 1
        app.board.serial.inbox = frame(30 + state["looks"], "ping")  # the host pings as it waits
        return "approve" if state["looks"] > 100 else None

    app = make_app(tmp_path, decide=decide)
    clock = [0]

    def ticks():
        clock[0] += 500
        return clock[0]

    app.board.ticks_ms = ticks
    digest = upload(app, a_psbt())
    app._serve(app.serial, cbor.dumps({"id": 7, "method": "sign_psbt", "params": {"sha256": digest}}), None)
    got = answers(app)
    assert clock[0] > 2 * ui.HOST_GONE_MS
    assert got[7]["result"]["signatures"] == 1

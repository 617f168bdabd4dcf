"""A transaction with more outputs than one screen holds: the officer pages
through every output, re-read from flash, then approves the totals; the
summary the host gets stays the same size (tests/firmware/device_loop.py
drives the request loop on CPython)."""

from device_loop import a_psbt, call, make_app, payee, upload
from signer.review import PAGE

MORE = [(payee(n), 1_000 + n) for n in range(1, 24)]  # outputs 1-23, then change at 24


def test_long_transactions_are_paged(tmp_path):
    app = make_app(tmp_path)
    res = call(app, "sign_psbt", sha256=upload(app, a_psbt(MORE)))["result"]
    pages = [s for s in app.board.screens if s["screen"] == "review_outputs"]
    assert [(p["first"], p["last"], p["total"]) for p in pages] == [(0, 9, 25), (10, 19, 25), (20, 24, 25)]
    entries = [e for p in pages for e in p["outputs"]]
    assert [e["n"] for e in entries] == list(range(25))
    assert [e["amount_sat"] for e in entries[1:24]] == [a for _, a in MORE]
    assert [e["change"] for e in entries] == [False] * 24 + [True]
    assert entries[24]["path"] == "m/84h/1h/0h/1/1"
    assert all(p["answer"] == "approve" for p in pages)
    [total] = [s for s in app.board.screens if s["screen"] == "review_tx"]
    assert total["truncated"] and total["spends_count"] == 24 and total["change_count"] == 1
    assert total["sent_sat"] == 50_000 + sum(a for _, a in MORE) and total["change_sat"] == entries[24]["amount_sat"]
    assert any("in 24 outputs" in line for line in total["lines"])
    review = res["review"]
    assert review["truncated"] and len(review["spends"]) + len(review["change"]) == PAGE
    assert review["sent_sat"] == total["sent_sat"] and res["signatures"] == 1


def test_rejecting_a_page_refuses_the_transaction(tmp_path):
    def decide(screen):
        return "reject" if screen["screen"] == "review_outputs" and screen["first"] == 10 else "approve"

    app = make_app(tmp_path, decide)
    res = call(app, "sign_psbt", sha256=upload(app, a_psbt(MORE)))
    assert res["error"]["code"] == 7  # REJECTED
    assert [s["screen"] for s in app.board.screens][-2:] == ["review_outputs", "review_outputs"]
    assert call(app, "psbt_read", offset=0, size=100)["error"]["code"] == 10  # nothing signed to read


def test_a_short_transaction_is_one_screen(tmp_path):
    app = make_app(tmp_path)
    call(app, "sign_psbt", sha256=upload(app, a_psbt(MORE[: PAGE - 2])))
    assert [s["screen"] for s in app.board.screens] == ["review_tx"]
    assert len(app.board.screens[0]["spends"]) + len(app.board.screens[0]["change"]) == PAGE

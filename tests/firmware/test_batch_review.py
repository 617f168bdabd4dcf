"""Batches (signer/batch.py): several PSBTs reviewed as one, approved once,
signed each; the request loop on CPython (tests/firmware/device_loop.py).
A PSBT the device would refuse alone fails the whole batch before any
screen, and nothing is signed."""

import hashlib

import pytest

from amanat.psbt_verify import verify_new_signatures
from device_loop import account, call, make_app, payee, upload
from amanat import txbuild
from signer import capacity


def spend(n, pay=0, amount=50_000, fee=1_000, more=()):
    """A PSBT spending coin `n` of the p2wpkh account to payee(pay)."""
    acct = account()
    coins = [(acct, n, 100_000 + sum(a for _, a in more))]
    return txbuild.build_spend(coins, payee(pay), amount, fee, change=(acct, 1), more=more,
                               tag=100 + n).psbt.serialize()


def add_all(app, raws):
    digests = []
    for k, raw in enumerate(raws):
        d = upload(app, raw)
        res = call(app, "batch_add", index=k, sha256=d)
        assert res["result"] == {"index": k, "count": k + 1}, res
        digests.append(d)
    return b"".join(digests)


def read(app, index, length):
    out = b""
    while len(out) < length:
        out += call(app, "psbt_read", offset=len(out), size=4096, index=index)["result"]["data"]
    return out


def screens(app, name):
    return [s for s in app.board.screens if s["screen"] == name]


def test_a_batch_is_reviewed_once_and_each_psbt_signed(tmp_path):
    app = make_app(tmp_path)
    raws = [spend(0, pay=1), spend(1, pay=2, amount=20_000), spend(2, pay=1, amount=30_000, fee=2_000)]
    res = call(app, "sign_batch", sha256s=add_all(app, raws))["result"]
    review = res["review"]
    assert review["transactions"] == 3 and review["inputs"] == 3
    assert review["fee_sat"] == 4_000 and review["sent_sat"] == 100_000
    assert [(d["amount_sat"], d["outputs"]) for d in review["destinations"]] == [(80_000, 2), (20_000, 1)]
    [change] = review["change"]
    assert change["to"] == "this device's account 0" and change["outputs"] == 3
    assert change["amount_sat"] == 3 * 100_000 - 100_000 - 4_000
    [shown] = screens(app, "review_batch")
    assert shown["answer"] == "approve" and shown["title"] == "Sign 3 transactions?"
    assert shown["psbts"] == [hashlib.sha256(r).hexdigest() for r in raws]
    assert "Total fee 0.00004000 BTC" in shown["lines"]
    assert not screens(app, "review_tx")  # one approval for the batch
    for k, (raw, signed) in enumerate(zip(raws, res["signed"])):
        out = read(app, k, signed["length"])
        assert hashlib.sha256(out).digest() == signed["sha256"]
        assert verify_new_signatures(raw, out) == signed["signatures"] == 1


def test_a_psbt_refused_alone_fails_the_batch_before_any_screen(tmp_path):
    app = make_app(tmp_path)
    raws = [spend(0), spend(1, amount=20_000, fee=40_000)]  # twice what it sends: above the fee limits
    res = call(app, "sign_batch", sha256s=add_all(app, raws))
    assert res["error"]["code"] == 9 and res["error"]["message"].startswith("PSBT 1 of the batch: ")
    assert not screens(app, "review_batch")
    assert "no signed PSBT 0" in call(app, "psbt_read", offset=0, size=10, index=0)["error"]["message"]


def test_a_psbt_that_does_not_parse_is_bad_psbt_naming_it(tmp_path):
    app = make_app(tmp_path)
    res = call(app, "sign_batch", sha256s=add_all(app, [spend(0), b"psbt\xff" + bytes(40)]))
    assert res["error"]["code"] == 8 and "PSBT 1 of the batch" in res["error"]["message"]


def test_rejecting_the_batch_signs_nothing(tmp_path):
    app = make_app(tmp_path, decide=lambda s: "reject" if s["screen"] == "review_batch" else "approve")
    res = call(app, "sign_batch", sha256s=add_all(app, [spend(0), spend(1)]))
    assert res["error"]["code"] == 7
    [shown] = screens(app, "review_batch")
    assert shown["answer"] == "reject"
    assert call(app, "psbt_read", offset=0, size=10, index=0)["error"]["code"] == 10


def test_many_destinations_are_paged_and_too_many_refused(tmp_path):
    app = make_app(tmp_path)
    more = [(payee(10 + i), 1_000) for i in range(11)]
    res = call(app, "sign_batch", sha256s=add_all(app, [spend(0, more=more), spend(1)]))["result"]
    assert len(res["review"]["destinations"]) == 12
    pages = screens(app, "batch_destinations")
    assert [(p["first"], p["last"], p["total"]) for p in pages] == [(0, 9, 12), (10, 11, 12)]
    [shown] = screens(app, "review_batch")
    assert "Send 0.00111000 BTC to 12 addresses" in shown["lines"]

    (tmp_path / "b").mkdir()
    app = make_app(tmp_path / "b")
    many = [(payee(50 + i), 1_000) for i in range(capacity.BATCH_DESTINATIONS)]
    res = call(app, "sign_batch", sha256s=add_all(app, [spend(0, more=many)]))
    assert res["error"]["code"] == 9 and "more than 40 addresses" in res["error"]["message"]


def test_the_hashes_must_name_the_batch_in_order(tmp_path):
    app = make_app(tmp_path)
    blob = add_all(app, [spend(0), spend(1)])
    for wrong in (blob[32:] + blob[:32], blob[:32], blob + bytes(32), blob[:-1], b""):
        res = call(app, "sign_batch", sha256s=wrong)
        assert res["error"]["code"] == 10, wrong
    first = call(app, "sign_batch", sha256s=blob)
    assert call(app, "sign_batch", sha256s=blob) == first  # a resend: the same answer, nothing signed again
    # a signed batch is not signed again, and gets no more PSBTs
    assert call(app, "sign_batch", _id=8, sha256s=blob)["error"]["code"] == 10
    d = upload(app, spend(2))
    assert call(app, "batch_add", index=2, sha256=d)["error"]["code"] == 4
    assert call(app, "batch_add", index=0, sha256=d)["result"] == {"index": 0, "count": 1}


def test_batch_add_checks_index_duplicates_and_the_upload(tmp_path):
    app = make_app(tmp_path)
    raw = spend(0)
    d = upload(app, raw)
    assert call(app, "batch_add", index=1, sha256=d)["error"]["code"] == 4  # no PSBT 0 yet
    assert call(app, "batch_add", index=0, sha256=bytes(32))["error"]["code"] == 10  # not the upload
    assert call(app, "batch_add", index=0, sha256=d)["result"]["count"] == 1
    assert call(app, "batch_add", index=1, sha256=d)["error"]["code"] == 10  # the upload moved into the batch
    res = call(app, "batch_add", index=1, sha256=upload(app, raw))
    assert res["error"]["code"] == 4 and "same as PSBT 0" in res["error"]["message"]


def test_a_psbt_changed_in_flash_is_caught(tmp_path):
    app = make_app(tmp_path)
    blob = add_all(app, [spend(0), spend(1)])
    path = app.batch.path(1)
    data = bytearray(open(path, "rb").read())
    data[-3] ^= 1
    open(path, "wb").write(data)
    res = call(app, "sign_batch", sha256s=blob)
    assert res["error"]["code"] == 10 and "PSBT 1 of the batch changed in flash" in res["error"]["message"]


@pytest.mark.parametrize("count", [capacity.BATCH_PSBTS])
def test_at_most_batch_psbts(tmp_path, count):
    app = make_app(tmp_path)
    add_all(app, [spend(i) for i in range(count)])
    res = call(app, "batch_add", index=count, sha256=upload(app, spend(count)))
    assert res["error"]["code"] == 4 and "at most %d" % count in res["error"]["message"]


def test_pings_say_which_psbt_the_device_works_on(tmp_path):
    app = make_app(tmp_path)
    blob = add_all(app, [spend(0), spend(1)])
    seen = []
    pump = app.pump

    def watched(busy, done=None, total=None):
        seen.append((busy, app.batch_at and list(app.batch_at)))
        pump(busy, done, total)

    app.pump = watched
    call(app, "sign_batch", sha256s=blob)
    assert ("reviewing", [0, 2]) in seen and ("reviewing", [1, 2]) in seen
    assert ("signing", [0, 2]) in seen and ("signing", [1, 2]) in seen
    assert seen.index(("signing", [0, 2])) > seen.index(("reviewing", [1, 2]))  # all reviewed before any signing
    assert app.batch_at is None  # idle again


def test_two_psbts_spending_the_same_coin_fail_the_batch(tmp_path):
    app = make_app(tmp_path)
    # spend(3) twice, to different payees: two transactions, one coin
    raws = [spend(1), spend(3, pay=1), spend(2), spend(3, pay=2, amount=40_000)]
    res = call(app, "sign_batch", sha256s=add_all(app, raws))
    assert res["error"]["code"] == 9
    assert res["error"]["message"] == ("PSBT 1 input 0 and PSBT 3 input 0 of the batch spend the same coin: "
                                       "they cannot both confirm")
    assert not screens(app, "review_batch")


def test_possible_repeats_across_the_batch_are_looked_up_exactly(tmp_path):
    """The shared filter's false positives become candidates, looked up in
    every PSBT: distinct coins sign; more candidates than the device keeps
    refuse the batch (never a repeat let through)."""
    from signer import review

    acct = account()

    def batch(inputs):
        return [txbuild.build_spend([(acct, 100 * k + i, 10_000) for i in range(inputs)], payee(k), 5_000 * inputs,
                                    100 * inputs, change=(acct, 1), tag=300 + 50 * k).psbt.serialize()
                for k in range(3)]

    real = review.Prevouts.check

    def crowded(self, view, i, vin):  # a filter that always says "maybe": every coin is a candidate
        for piece in self.bits:
            piece[:] = b"\xff" * len(piece)
        real(self, view, i, vin)

    review.Prevouts.check = crowded
    try:
        app = make_app(tmp_path)
        res = call(app, "sign_batch", sha256s=add_all(app, batch(20)))  # 60 candidates
        assert [s["signatures"] for s in res["result"]["signed"]] == [20, 20, 20]
        res = call(app, "sign_batch", _id=9, sha256s=add_all(app, batch(30)))  # 90
        assert res["error"]["code"] == 9 and "too many inputs to check" in res["error"]["message"]
    finally:
        review.Prevouts.check = real


def test_a_restart_drops_the_batch_and_its_files(tmp_path):
    app = make_app(tmp_path)
    blob = add_all(app, [spend(0), spend(1)])
    call(app, "sign_batch", sha256s=blob)
    assert (tmp_path / "batch1.signed.psbt").exists()
    again = make_app(tmp_path)
    assert not list(tmp_path.glob("batch*"))
    assert call(again, "sign_batch", sha256s=blob)["error"]["code"] == 10
    assert call(again, "psbt_read", offset=0, size=10, index=0)["error"]["code"] == 10

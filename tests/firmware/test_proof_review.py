"""A BIP-322 proof of reserves as the device reviews it (firmware on
CPython): recognised from its structure, shown as "Proof of reserves" with
the message, the coins and their total, signed; every mutation that could
make it a real spend refused with its cause."""

import hashlib

import pytest
from embit.psbt import OutputScope
from embit.transaction import TransactionOutput

from amanat import reserves
from conftest import firmware_on_cpython

firmware_on_cpython()
from device_loop import account, call, make_app, payee, upload  # noqa: E402

MESSAGE = b"Reserve audit 2026-12-05\nblock " + b"00" * 32


def coins(n=2):
    return [reserves.Coin(hashlib.sha256(b"coin %d" % k).digest(), k, 100_000 * (k + 1), 0, k + 1) for k in range(n)]


def proof(**kw):
    return reserves.build_proof(account("p2wpkh"), kw.pop("message", MESSAGE), kw.pop("coins", coins()))


def sign(app, psbt):
    return call(app, "sign_psbt", sha256=upload(app, reserves.serialize_proof(psbt)))


def test_a_proof_is_shown_as_such_and_signed(tmp_path):
    app = make_app(tmp_path)
    res = sign(app, proof())["result"]
    assert res["signatures"] == 3  # input 0 (the challenge address) and both coins
    p = res["review"]["proof"]
    assert (p["coins"], p["total_sat"], p["encoding"], p["length"]) == (2, 300_000, "text", len(MESSAGE))
    assert p["message"] == MESSAGE.decode().replace("\n", "\\n")
    [screen] = [s for s in app.board.screens if s["screen"] == "proof_of_reserves"]
    assert screen["title"] == "Proof of reserves" and screen["answer"] == "approve"
    assert '"' + p["message"] + '"' in screen["lines"] and "2 coins, total 0.00300000 BTC" in screen["lines"]
    assert not [s for s in app.board.screens if s["screen"] == "review_tx"]


def test_a_binary_message_is_shown_as_hex(tmp_path):
    app = make_app(tmp_path)
    res = sign(app, proof(message=b"\x00\xffhex: x"))["result"]
    assert res["review"]["proof"]["encoding"] == "hex" and res["review"]["proof"]["message"] == "00ff6865783a2078"


def refused(tmp_path, psbt, code="REFUSED"):
    app = make_app(tmp_path)
    err = sign(app, psbt)["error"]
    assert not [s for s in app.board.screens if s["screen"] == "proof_of_reserves"]  # nothing shown
    return err["message"]


def test_a_real_output_is_refused(tmp_path):
    psbt = proof()
    psbt.outputs[0].value, psbt.outputs[0].script_pubkey = 50_000, payee()
    assert "0 sat to a bare OP_RETURN" in refused(tmp_path, psbt) and "real payment" in refused(tmp_path, psbt)


def test_a_second_output_is_refused(tmp_path):
    psbt = proof()
    psbt.outputs.append(OutputScope({}, vout=TransactionOutput(50_000, payee())))
    assert "exactly one output" in refused(tmp_path, psbt)


def test_a_sighash_other_than_all_is_refused(tmp_path):
    for sighash in (2, 3, 0x81):  # NONE, SINGLE, ALL|ANYONECANPAY: each would free the coin from input 0
        psbt = proof()
        psbt.inputs[1].sighash_type = sighash
        assert "input 1: sighash type 0x%02x is not allowed" % sighash in refused(tmp_path, psbt)


def test_input_0_not_the_message_is_refused(tmp_path):
    psbt = proof()
    psbt.unknown[reserves.PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE] = MESSAGE + b" (not what was built)"
    assert "input 0 does not spend the to_spend transaction of the message shown" in refused(tmp_path, psbt)


def test_a_coin_not_of_the_reserve_is_refused(tmp_path):
    psbt = proof()
    psbt.inputs[2].bip32_derivations = {}
    psbt.inputs[2].witness_utxo = TransactionOutput(200_000, payee(3))
    assert "input 2 is not the reserve's" in refused(tmp_path, psbt)


def test_without_its_message_it_is_an_ordinary_spend_of_everything(tmp_path):
    psbt = proof()
    del psbt.unknown[reserves.PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE]
    assert "non_witness_utxo" in refused(tmp_path, psbt)  # the rules of a spend, not a proof's


def test_a_proof_is_not_signed_in_a_batch(tmp_path):
    app = make_app(tmp_path)
    digest = upload(app, reserves.serialize_proof(proof()))
    assert call(app, "batch_add", index=0, sha256=digest)["result"]["count"] == 1
    err = call(app, "sign_batch", _id=9, sha256s=digest)["error"]
    assert "signed on its own" in err["message"]

"""The client refuses answers that are not the protocol, with a clear error."""

import hashlib
import time

import pytest
from embit.psbt import PSBT

import fake_client as fc
from amanat import client, txbuild
from amanat.descriptors import DescriptorError
from amanat.errors import ProtocolError, SignatureError


class StubTransport:
    """Answers each method with a canned result; keeps what it was sent."""

    def __init__(self, answers):
        self.answers = answers
        self.sent = []

    def call(self, method, params=None, timeout=-1, on_idle=None):
        self.sent.append((method, params))
        return self.answers[method]

    def close(self):
        pass


INFO = {"protocol": 1, "initialized": True, "locked": False, "firmware": "x", "model": "m",
        "network": "regtest", "fingerprint": b"\x01\x02\x03\x04", "target": "unix", "heap": {},
        "limits": {"psbt_bytes": 1 << 20, "inputs": 2500, "outputs": 10000, "flash_free": 1 << 21},
        "trail": {"seq": 1, "head": "00" * 32, "unsigned": 0}}


def make(monkeypatch, **answers):
    monkeypatch.setattr(client, "Transport", lambda port, timeout: StubTransport(dict({"info": INFO}, **answers)))
    return client.Client("/dev/stub")


@pytest.mark.parametrize("answer", [{"xpub": 5}, {}, ["tpub"], None, {"xpub": b"tpub"}])
def test_malformed_answers_are_protocol_errors(monkeypatch, answer):
    c = make(monkeypatch, get_xpub=answer)
    with pytest.raises(ProtocolError) as e:
        c.get_xpub("m/0")
    assert "get_xpub" in str(e.value)


def test_booleans_are_not_integers(monkeypatch):
    c = make(monkeypatch, get_limits={"fee_percent_tenths": True, "fee_max_sat": 1})
    with pytest.raises(ProtocolError):
        c.get_limits()


def test_unknown_protocol_version_is_refused(monkeypatch):
    monkeypatch.setattr(client, "Transport", lambda port, timeout: StubTransport({"info": dict(INFO, protocol=2)}))
    with pytest.raises(ProtocolError) as e:
        client.Client("/dev/stub")
    assert "protocol 2" in str(e.value)


def test_good_answers_pass(monkeypatch):
    c = make(monkeypatch, get_xpub={"xpub": "tpubX"})
    assert c.get_xpub("m/0") == "tpubX"
    assert c.info()["fingerprint"] == b"\x01\x02\x03\x04"


@pytest.mark.parametrize("typed", ["m/84H/1H/0H", "m/84'/1'/0'", " m/84h/1H/0' "])
def test_typed_paths_are_sent_in_h_notation(monkeypatch, typed):
    c = make(monkeypatch, get_xpub={"xpub": "tpubX"})
    assert c.get_xpub(typed) == "tpubX"
    assert c.t.sent[-1] == ("get_xpub", {"path": "m/84h/1h/0h"})


def test_a_bad_path_is_refused_before_it_is_sent(monkeypatch):
    c = make(monkeypatch)
    with pytest.raises(DescriptorError, match="bad path element"):
        c.get_xpub("m/84x")
    assert [m for m, _ in c.t.sent] == ["info"]


# ---------------------------------------------------------------- sign_psbt: only a verified PSBT comes back


class SigningLine:
    """The PSBT requests of docs/protocol.md over a stub line, signed with
    the fake device's keys; `tamper` changes what is read back."""

    def __init__(self, tamper=None, claim=0):
        self.tamper = tamper
        self.claim = claim  # signatures claimed beyond those made
        self.upload = b""
        self.signed = b""
        self.rids = {}
        self.last_rx = time.monotonic()

    def answer(self, method, p):
        if method == "info":
            return INFO
        if method == "psbt_begin":
            self.upload = b""
            return {"chunk_size": 100}
        if method == "psbt_chunk":
            self.upload += p["data"]
            return {"received": len(self.upload)}
        if method == "psbt_end":
            return {"sha256": hashlib.sha256(self.upload).digest()}
        if method == "sign_psbt":
            psbt = PSBT.parse(self.upload)
            n = fc.sign_psbt(psbt, fc.root_key())
            if self.tamper:
                self.tamper(psbt)
            self.signed = psbt.serialize()
            return {"sha256": hashlib.sha256(self.signed).digest(), "length": len(self.signed),
                    "signatures": n + self.claim, "review": {"fee_sat": 1_000}}
        if method == "psbt_read":
            return {"data": self.signed[p["offset"] : p["offset"] + p["size"]]}
        raise AssertionError(method)

    def call(self, method, params=None, timeout=-1, on_idle=None):
        return self.answer(method, params or {})

    def send(self, method, params=None):
        self.rids[len(self.rids) + 1] = (method, params or {})
        return len(self.rids)

    def wait(self, rid, timeout, on_idle=None, strict=True):
        return self.answer(*self.rids[rid])

    def take_stray(self, rid):
        return None

    def close(self):
        pass


def spend() -> bytes:
    path = txbuild.account_path("p2wpkh", "regtest")
    acct = txbuild.Account("p2wpkh", fc.root_key().derive(path).to_public(), fc.root_key().my_fingerprint, path)
    return txbuild.build_spend([(acct, 0, 90_000), (acct, 1, 20_000)], acct.output(0, 9), 50_000, 1_000,
                               change=(acct, 2)).psbt.serialize()


def signing_client(monkeypatch, tamper=None, claim=0):
    monkeypatch.setattr(client, "Transport", lambda port, timeout: SigningLine(tamper, claim))
    return client.Client("/dev/stub")


def test_sign_psbt_returns_the_verified_psbt_and_the_review(monkeypatch):
    stages = []
    c = signing_client(monkeypatch)
    signed = c.sign_psbt(spend(), lambda stage, done, total: stages.append(stage))
    assert signed.signatures == 2 and signed.review == {"fee_sat": 1_000}
    assert PSBT.parse(signed.psbt).inputs[1].partial_sigs
    assert stages[-1] == "verify" and "download" in stages
    assert not hasattr(c, "last_review")  # the review travels with the PSBT


def flip_signature(psbt):
    pub = next(iter(psbt.inputs[1].partial_sigs))
    psbt.inputs[1].partial_sigs[pub] = fc.flip_bit(psbt.inputs[1].partial_sigs[pub], at=-5)


def raise_amount(psbt):
    psbt.outputs[0].value += 1


@pytest.mark.parametrize("tamper, words", [(flip_signature, "input 1: invalid ECDSA signature"),
                                           (raise_amount, "output 0: the device changed the amount")])
def test_sign_psbt_refuses_what_does_not_verify(monkeypatch, tamper, words):
    with pytest.raises(SignatureError, match=words):
        signing_client(monkeypatch, tamper).sign_psbt(spend())


def test_sign_psbt_refuses_a_count_the_psbt_does_not_bear_out(monkeypatch):
    with pytest.raises(ProtocolError, match="reports 3 signatures, the PSBT it returned adds 2"):
        signing_client(monkeypatch, claim=1).sign_psbt(spend())

"""The client refuses answers that are not the protocol, with a clear error."""

import pytest

from amanat import client
from amanat.descriptors import DescriptorError
from amanat.errors import ProtocolError


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
        "network": "regtest", "fingerprint": b"\x01\x02\x03\x04"}


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

"""The client refuses answers that are not the protocol, with a clear error."""

import pytest

from amanat import client
from amanat.errors import ProtocolError


class StubTransport:
    """Answers each method with a canned result."""

    def __init__(self, answers):
        self.answers = answers

    def call(self, method, params=None, timeout=-1, on_idle=None):
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

"""Whose fault an error is: the request loop (signer.app) on CPython, driven
through a board of the test's own (a BoardBase with in-memory channels).

A PSBT that does not parse is BAD_PSBT; a flash failure is STORAGE; a bug of
the firmware's is INTERNAL, logged on the board, and never reported to the
officer as their malformed PSBT. The device answers the next request.
"""

import hashlib
import io
import json
import sys

import pytest
from embit import bip32, bip39, script
from embit.networks import NETWORKS

from amanat import paths, txbuild
from conftest import firmware_on_cpython

firmware_on_cpython()
sys.path.insert(0, str(paths.boards_dir()))

from board_base import BoardBase  # noqa: E402
from signer import cbor, framing, review  # noqa: E402
from signer.app import App  # noqa: E402
from signer.keystore import Keystore  # noqa: E402

NETWORK = "regtest"
MNEMONIC = "all all all all all all all all all all all all"


class Line:
    """A channel: what the host sent waits in `inbox`, what the device wrote
    collects in `outbox`."""

    def __init__(self):
        self.inbox = b""
        self.outbox = bytearray()

    def read_available(self):
        data, self.inbox = self.inbox, b""
        return data

    def write(self, data):
        self.outbox += data
        return True


class MemoryBoard(BoardBase):
    name = "test"
    auto_confirm = True

    def __init__(self, root):
        self.flash_root = str(root)
        self.serial = Line()
        self.logged = []
        self.screens = []

    def mount_flash(self):
        pass

    def record_screen(self, record, wrap=None):
        sink = io.BytesIO()
        (wrap(sink) if wrap else sink).write(json.dumps(record).encode())  # hashed as written
        self.screens.append(json.loads(sink.getvalue()))

    def audit_files(self):
        return []

    def log(self, text):
        self.logged.append(text)

    def log_exception(self, e):
        self.logged.append("%s: %s" % (type(e).__name__, e))

    def ticks_ms(self):
        return 0

    def wait(self, timeout_ms):
        pass


@pytest.fixture
def app(tmp_path):
    a = App(MemoryBoard(tmp_path))
    ks = Keystore(NETWORK)
    ks.load_mnemonic(MNEMONIC)
    a.keystore = ks
    return a


def call(app, method, **params):
    """One request through the loop's own entry; the answer map."""
    app._serve(app.serial, cbor.dumps({"id": 7, "method": method, "params": params}), None)
    out = bytes(app.board.serial.outbox)
    app.board.serial.outbox.clear()
    [payload] = framing.FrameReader().feed(out, 0)
    return cbor.loads(payload)


def upload(app, raw):
    assert call(app, "psbt_begin", length=len(raw))["result"]["chunk_size"] > 0
    call(app, "psbt_chunk", offset=0, data=raw)
    digest = call(app, "psbt_end")["result"]["sha256"]
    assert digest == hashlib.sha256(raw).digest()
    return digest


def a_psbt():
    net = NETWORKS[NETWORK]
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=net["xprv"])
    path = txbuild.account_path("p2wpkh", NETWORK)
    acct = txbuild.Account("p2wpkh", root.derive(path).to_public(), root.my_fingerprint, path)
    payee = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
    return txbuild.build_spend([(acct, 0, 100_000)], payee, 50_000, 1_000, change=(acct, 1)).psbt.serialize()


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

"""The firmware's request loop (signer.app) on CPython, driven through a
board of the test's own: a BoardBase with in-memory channels and an audit
trail kept in a list, auto-confirming every prompt."""

import hashlib
import io
import json
import sys

from embit import bip32, bip39, script
from embit.networks import NETWORKS

from amanat import paths, txbuild
from conftest import firmware_on_cpython

firmware_on_cpython()
sys.path.insert(0, str(paths.boards_dir()))

from board_base import BoardBase  # noqa: E402
from signer import cbor, framing  # noqa: E402
from signer.app import App  # noqa: E402
from signer.audit import Trail  # noqa: E402
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
    """Approves every prompt, or answers each as decide(screen) says."""

    name = "test"
    auto_confirm = True

    def __init__(self, root, decide=None):
        self.flash_root = str(root)
        self.serial = Line()
        self.logged = []
        self.screens = []
        self.lines = []  # the trail's lines as written
        self.decide = decide
        self.auto_confirm = decide is None
        self.shown = None

    def show(self, screen):
        self.shown = screen

    def buttons(self):
        return self.decide(self.shown) if self.shown is not None else None

    def mount_flash(self):
        pass

    def device_key(self):
        return bytearray(b"\x42" * 32)

    def record_screen(self, record, write):
        sink = io.StringIO()
        write(sink)  # the firmware's canonical line, hashed as written
        self.lines.append(sink.getvalue().encode())
        self.screens.append(json.loads(sink.getvalue()))

    def audit_files(self):
        return [self.flash_root + "/none.1.jsonl", self.flash_root + "/none.jsonl"]  # kept in memory

    def log(self, text):
        self.logged.append(text)

    def log_exception(self, e):
        self.logged.append("%s: %s" % (type(e).__name__, e))

    def ticks_ms(self):
        return 0

    def wait(self, timeout_ms):
        pass


def make_app(tmp_path, decide=None):
    """An App on a MemoryBoard in `tmp_path`, unlocked with MNEMONIC."""
    a = App(MemoryBoard(tmp_path, decide))
    assert [r["screen"] for r in a.board.screens] == ["boot"]
    a.board.screens.clear()  # the tests look at what their requests record
    a.board.lines.clear()
    a.trail = Trail(a.board)  # and the trail starts with them
    ks = Keystore(NETWORK)
    ks.load_mnemonic(MNEMONIC)
    a.keystore = ks
    return a


def call(app, method, _id=7, **params):
    """One request through the loop's own entry; the answer map. The same
    request with the same `_id` is a resend: it gets the first answer."""
    app._serve(app.serial, cbor.dumps({"id": _id, "method": method, "params": params}), None)
    out = bytes(app.board.serial.outbox)
    app.board.serial.outbox.clear()
    [payload] = framing.FrameReader().feed(out, 0)
    return cbor.loads(payload)


def upload(app, raw):
    assert call(app, "psbt_begin", length=len(raw))["result"]["chunk_size"] > 0
    for off in range(0, len(raw), 4096):
        call(app, "psbt_chunk", _id=100 + off // 4096, offset=off, data=raw[off : off + 4096])
    digest = call(app, "psbt_end")["result"]["sha256"]
    assert digest == hashlib.sha256(raw).digest()
    return digest


def account(kind="p2wpkh"):
    net = NETWORKS[NETWORK]
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=net["xprv"])
    path = txbuild.account_path(kind, NETWORK)
    return txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)


def payee(n=0):
    return script.p2wpkh(bip32.HDKey.from_seed(bytes([n]) * 32).key.get_public_key())


def a_psbt(more=()):
    acct = account()
    coins = [(acct, 0, 100_000 + sum(a for _, a in more))]
    return txbuild.build_spend(coins, payee(), 50_000, 1_000, change=(acct, 1), more=more).psbt.serialize()

"""Drive the firmware's keystore, review and signer in a MicroPython process, no serial line.

For the demo and the tests: the firmware code runs on the real MicroPython VM
with the project's own device crypto. PSBTs go in through a temporary file and
come back as hex in JSON. A typed device error (BadPsbt, Refused, ...) comes
back as {"error": {...}} and is raised here as DeviceCodeError; anything else
that stops the VM is a MicroPythonError with its traceback.

review(), sign() and sign_with_review() take `wallets`, [(name, descriptor)]
registered first (parsed, checked against the seed and stored with the
firmware's Registry in a temporary flash folder, no officer prompt), and
`limits`, the fee limits ({"fee_percent_tenths", "fee_max_sat"}; the device's
defaults if None).
"""

import os
import shutil
import tempfile

from . import mpy


class DeviceCodeError(Exception):
    """The firmware refused: `name` is the wire error name (REFUSED, BAD_PSBT, ...)."""

    def __init__(self, name: str, message: str, code: int | None = None):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.code = code


_PRELUDE = """
import json
from binascii import hexlify, unhexlify
from signer import crypto
crypto.install()
from signer.errors import DeviceError
from signer.keystore import Keystore
ks = Keystore(%(network)r)
ks.load_mnemonic(%(mnemonic)r, %(passphrase)r)
try:
%(body)s
except DeviceError as e:
    print(json.dumps({"error": {"name": e.name, "code": e.code, "message": e.message}}))
"""


def _run(body: str, mnemonic: str, passphrase: str, network: str, heap=None):
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    code = _PRELUDE % {"network": network, "mnemonic": mnemonic, "passphrase": passphrase, "body": indented}
    out = mpy.run_json(code, heap=heap)
    for doc in out:
        if isinstance(doc, dict) and "error" in doc:
            err = doc["error"]
            raise DeviceCodeError(err["name"], err["message"], err.get("code"))
    return out


def _with_file(data: bytes, fn):
    with tempfile.NamedTemporaryFile(suffix=".psbt", delete=False) as f:
        f.write(data)
        path = f.name
    try:
        return fn(path)
    finally:
        os.unlink(path)


_WALLETS = """
from signer.wallets import Registry, check_policy, parse_wallet
registry = Registry(%(root)r, ks, ks.network)
for name, text in %(wallets)r:
    w = parse_wallet(name, text, ks.network)
    check_policy(w, ks)
    registry.add(w)
w = None
"""


def _setup(wallets, limits, root):
    """Code that defines `registry` and `limits` for review_psbt."""
    if wallets is None:
        code = "registry = None\n"
    else:
        code = _WALLETS % {"root": root, "wallets": [tuple(w) for w in wallets]}
    return code + "limits = %r\n" % (dict(limits) if limits is not None else None,)


def _with_flash(wallets, fn):
    root = tempfile.mkdtemp(prefix="amanat-flash-") if wallets is not None else None
    try:
        return fn(root)
    finally:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def xpubs(mnemonic: str, paths: list[str], passphrase="", network="main", heap=None) -> dict:
    """{"fingerprint": hex, "xpubs": {path: xpub}} computed on the device."""
    body = """
out = {"fingerprint": hexlify(ks.fingerprint).decode(), "xpubs": {}}
for p in %r:
    out["xpubs"][p] = ks.xpub(p)
print(json.dumps(out))
""" % (list(paths),)
    return _run(body, mnemonic, passphrase, network, heap)[0]


def review(psbt: bytes, mnemonic: str, passphrase="", network="main", heap=None, wallets=None,
           limits=None) -> dict:
    """The device's review of a PSBT (Review.to_dict()), or DeviceCodeError."""
    body = """
from signer.review import review_psbt
with open(%(psbt)r, "rb") as f:
    print(json.dumps(review_psbt(f, ks, registry=registry, limits=limits).to_dict()))
"""

    def run(root):
        return _with_file(psbt, lambda p: _run(_setup(wallets, limits, root) + body % {"psbt": p},
                                               mnemonic, passphrase, network, heap)[0])

    return _with_flash(wallets, run)


def sign(psbt: bytes, mnemonic: str, passphrase="", network="main", heap=None, wallets=None, limits=None):
    """(signed PSBT bytes, signatures added): reviewed, then signed, on the device."""
    out = sign_with_review(psbt, mnemonic, passphrase, network, heap, wallets=wallets, limits=limits)
    return out["psbt"], out["count"]


def sign_with_review(psbt: bytes, mnemonic: str, passphrase="", network="main", heap=None, wallets=None,
                     limits=None) -> dict:
    """{"psbt": signed bytes, "count": int, "review": dict, "progress": [(done, total)]}."""
    body = """
import io
from signer.review import review_psbt
from signer.psbt_signer import sign_psbt_stream
with open(%(psbt)r, "rb") as f:
    src = io.BytesIO(f.read())
r = review_psbt(src, ks, registry=registry, limits=limits)
dst = io.BytesIO()
calls = []
n = sign_psbt_stream(src, dst, ks, r, progress=lambda i, t: calls.append([i, t]))
print(json.dumps({"psbt": hexlify(dst.getvalue()).decode(), "count": n, "review": r.to_dict(), "progress": calls}))
"""

    def run(root):
        return _with_file(psbt, lambda p: _run(_setup(wallets, limits, root) + body % {"psbt": p},
                                               mnemonic, passphrase, network, heap)[0])

    out = _with_flash(wallets, run)
    out["psbt"] = bytes.fromhex(out["psbt"])
    return out


def sign_file(src: str, dst: str, mnemonic: str, passphrase="", network="main", heap=None) -> dict:
    """Review and sign file `src` into file `dst` as the device does with its flash
    (the signatures spooled to a third file). Returns {"count", "review",
    "heap_after_setup"}: the bytes in use once the code and keys are loaded."""
    body = """
import gc
from signer.review import review_psbt
from signer.psbt_signer import sign_psbt_stream
gc.collect()
setup = gc.mem_alloc()
with open(%(src)r, "rb") as f, open(%(dst)r, "wb") as out, open(%(tmp)r, "w+b") as tmp:
    r = review_psbt(f, ks)
    n = sign_psbt_stream(f, out, ks, r, sig_stream=tmp)
print(json.dumps({"count": n, "review": r.to_dict(), "heap_after_setup": setup}))
"""
    tmp = dst + ".sigs"
    try:
        return _run(body % {"src": src, "dst": dst, "tmp": tmp}, mnemonic, passphrase, network, heap)[0]
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


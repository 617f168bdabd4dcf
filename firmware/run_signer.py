"""The firmware's keystore, review and signer in one MicroPython process, no board.

The entry point of host tools that run the device's code without a serial
line (amanat.inprocess: the demo, the tests, the benchmarks). Reads one JSON
request from stdin and prints one JSON answer; a typed device error
(BadPsbt, Refused, ...) is answered {"error": {"name", "code", "message"}}.
Not part of the board images: boards freeze main.py and signer/ only.

Request: {"op", "mnemonic", "passphrase", "network", ...} where op is
- "xpubs", with "paths": {"fingerprint": hex, "xpubs": {path: xpub}};
- "review", with "psbt" (a file): the review's summary;
- "sign", with "psbt": {"psbt": signed hex, "count", "review", "progress"};
- "sign_file", with "psbt", "out" and "spool" (files, as the device uses
  its flash): {"count", "review", "heap_after_setup"}.
"review" and "sign" also take "wallets", [[name, descriptor]] to register
first in the folder "flash" (parsed and checked against the seed, no
prompt), and "limits", the fee limits (the device's defaults if null).
"""

import gc
import io
import json
import sys
from binascii import hexlify

from signer import crypto

crypto.install()  # before embit is first imported

from signer.errors import DeviceError  # noqa: E402
from signer.keystore import Keystore  # noqa: E402


def _registry(req, ks):
    if req.get("wallets") is None:
        return None
    from signer.wallets import Registry, check_policy, parse_wallet

    registry = Registry(req["flash"], ks, ks.network)
    for name, text in req["wallets"]:
        w = parse_wallet(name, text, ks.network)
        check_policy(w, ks)
        registry.add(w)
    return registry


def xpubs(req, ks):
    return {"fingerprint": hexlify(ks.fingerprint).decode(), "xpubs": {p: ks.xpub(p) for p in req["paths"]}}


def review(req, ks):
    from signer.review import review_psbt

    with open(req["psbt"], "rb") as f:
        summary, _ = review_psbt(f, ks, registry=_registry(req, ks), limits=req.get("limits"))
    return summary.to_dict()


def sign(req, ks):
    from signer.psbt_signer import sign_psbt_stream
    from signer.review import review_psbt

    with open(req["psbt"], "rb") as f:
        src = io.BytesIO(f.read())
    registry = _registry(req, ks)
    summary, plan = review_psbt(src, ks, registry=registry, limits=req.get("limits"))
    dst = io.BytesIO()
    calls = []
    n = sign_psbt_stream(src, dst, ks, plan, registry, progress=lambda i, t: calls.append([i, t]))
    return {"psbt": hexlify(dst.getvalue()).decode(), "count": n, "review": summary.to_dict(), "progress": calls}


def sign_file(req, ks):
    from signer.psbt_signer import sign_psbt_stream
    from signer.review import review_psbt

    gc.collect()
    setup = gc.mem_alloc()
    with open(req["psbt"], "rb") as f, open(req["out"], "wb") as out, open(req["spool"], "w+b") as spool:
        summary, plan = review_psbt(f, ks)
        n = sign_psbt_stream(f, out, ks, plan, sig_stream=spool)
    return {"count": n, "review": summary.to_dict(), "heap_after_setup": setup}


OPS = {"xpubs": xpubs, "review": review, "sign": sign, "sign_file": sign_file}


def main():
    req = json.loads(sys.stdin.read())
    ks = Keystore(req.get("network", "main"))
    ks.load_mnemonic(req["mnemonic"], req.get("passphrase", ""))
    try:
        out = OPS[req["op"]](req, ks)
    except DeviceError as e:
        out = {"error": {"name": e.name, "code": e.code, "message": e.message}}
    print(json.dumps(out))


main()

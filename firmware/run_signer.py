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
  its flash): {"count", "review", "heap_after_setup"};
- "show", with "psbt" and "watch" instead of a mnemonic: {"review", "screens"},
  the device's review and the screens it would show (amanat psbt show).
"review" and "sign" also take "wallets", [[name, descriptor]] to register
first in the folder "flash" (parsed and checked against the seed, no
prompt), and "limits", the fee limits (the device's defaults if null).
"show" takes "wallets" (those the device has registered) and "limits" too.

"watch" is a device's public side: {"fingerprint": hex, "keys": {path:
xpub}}, the xpubs at the hardened prefixes (the accounts) of every path with
that fingerprint in the PSBT and the wallets. A path under no given prefix is
answered NO_KEY naming it.
"""

import gc
import io
import json
import sys
from binascii import hexlify, unhexlify

from signer import crypto

crypto.install()  # before embit is first imported

from signer.errors import DeviceError  # noqa: E402
from signer.keystore import Keystore  # noqa: E402


class NoKey(DeviceError):
    code = 0
    name = "NO_KEY"


class Accounts:
    """A watch-only root: derive() answers the xpubs it was given, by path."""

    def __init__(self, keys):
        from embit import bip32
        from signer.keyexpr import parse_path

        self.keys = {tuple(parse_path(p)): bip32.HDKey.from_string(x) for p, x in keys.items()}

    def derive(self, path):
        from signer.keyexpr import format_path

        for n in range(len(path), -1, -1):
            key = self.keys.get(tuple(path[:n]))
            if key is not None and all(i < 0x80000000 for i in path[n:]):
                return key.derive(path[n:]) if n < len(path) else key
        raise NoKey("no key for %s" % format_path(path))


class WatchOnly:
    """The keystore's public side (fingerprint, network, account xpubs), for a
    review on the host with the device's code and without its seed."""

    loaded = True

    def __init__(self, network, watch):
        from embit.networks import NETWORKS

        self.network_name = network
        self.network = NETWORKS[network]
        self.fingerprint = unhexlify(watch["fingerprint"])
        self.root = Accounts(watch["keys"])


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


def show(req, ks):
    from signer.handlers import review_screens
    from signer.review import Reviewer
    from signer.wallets import Listed

    with open(req["psbt"], "rb") as f:
        rv = Reviewer(f, ks, Listed(req.get("wallets") or [], ks), req.get("limits"))
        summary, _ = rv.run()
        shown = summary.to_dict()
        if req.get("anti_exfil") is not None:
            shown["anti_exfil"] = req["anti_exfil"]
        return {"review": shown, "screens": list(review_screens(rv, shown))}


OPS = {"xpubs": xpubs, "review": review, "sign": sign, "sign_file": sign_file, "show": show}


def main():
    req = json.loads(sys.stdin.read())
    network = req.get("network", "main")
    try:
        if "watch" in req:
            ks = WatchOnly(network, req["watch"])
        else:
            ks = Keystore(network)
            ks.load_mnemonic(req["mnemonic"], req.get("passphrase", ""))
        out = OPS[req["op"]](req, ks)
    except DeviceError as e:
        out = {"error": {"name": e.name, "code": e.code, "message": e.message}}
    print(json.dumps(out))


main()

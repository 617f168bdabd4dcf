"""Request handlers: one function per wire method (docs/protocol.md).

Each takes the app and its typed params and returns the result map, or
raises a DeviceError naming what is wrong.
"""

import os
from binascii import b2a_base64, hexlify

from embit import hashes
from embit.bip32 import HARDENED_INDEX
from embit import bip32, ec

from . import scripts
from .desc_checksum import add_checksum, strip_checksum
from .errors import BadParams, BadPsbt, DeviceError, Rejected, StorageError, UploadError
from .spool import CHUNK, file_sha256

READ_MAX = 4096
WIRE_OUTPUTS_MAX = 40
MESSAGE_MAX = 1024


def ping(app, p):
    return {"busy": None}


def info(app, p):
    return app.info()


def get_xpub(app, p):
    path = scripts.parse_path(p.text("path", limit=100))
    return {"xpub": app.keystore.xpub(scripts.format_path(path))}


_DESC = (("pkh(%s)", 44), ("sh(wpkh(%s))", 49), ("wpkh(%s)", 84), ("tr(%s)", 86))


def get_descriptors(app, p):
    account = p.uint("account", limit=HARDENED_INDEX - 1)
    ks = app.keystore
    coin = scripts.coin_type(ks.network)
    fp = hexlify(ks.fingerprint).decode()
    out = {"receive": [], "internal": []}
    for template, purpose in _DESC:
        origin = "%d'/%d'/%d'" % (purpose, coin, account)
        xpub = ks.xpub("m/" + origin)
        origin = origin.replace("'", "h")
        for chain, name in ((0, "receive"), (1, "internal")):
            key = "[%s/%s]%s/%d/*" % (fp, origin, xpub, chain)
            out[name].append(add_checksum(template % key))
    return out



_KINDS = (("sh(wpkh(", "p2sh-p2wpkh"), ("wpkh(", "p2wpkh"), ("pkh(", "p2pkh"), ("tr(", "p2tr"))


def _single_key(inner):
    """(origin path, PublicKey) of "[fp/path]KEY[/a/b...]" naming one key:
    KEY is a hex public key (x-only for tr) or an xpub/tpub followed by
    unhardened steps. The fingerprint is returned first for the caller."""
    if not inner.startswith("[") or "]" not in inner:
        raise BadParams("the key needs its origin [fingerprint/path]")
    end = inner.index("]")
    steps = inner[1:end].split("/")
    try:
        fp = bytes(int(steps[0][i : i + 2], 16) for i in range(0, 8, 2)) if len(steps[0]) == 8 else None
    except ValueError:
        fp = None
    if fp is None:
        raise BadParams("the key's origin fingerprint must be 8 hex digits")
    origin = scripts.parse_path("/".join(["m"] + steps[1:]))
    parts = inner[end + 1 :].split("/")
    key, rest = parts[0], parts[1:]
    if any(("*" in r or "<" in r) for r in rest):
        raise BadParams("descriptor must name one address (no * or <a;b>)")
    rest = scripts.parse_path("/".join(["m"] + rest)) if rest else []
    if any(i >= HARDENED_INDEX for i in rest):
        raise BadParams("hardened steps after the key cannot be checked")
    try:
        if key[:4] in ("xpub", "tpub"):
            pub = bip32.HDKey.from_base58(key).derive(rest).key
        elif len(key) == 64:
            pub = ec.PublicKey.from_xonly(bytes.fromhex(key))
        else:
            pub = ec.PublicKey.parse(bytes.fromhex(key))
    except MemoryError:
        raise
    except Exception:
        raise BadParams("the descriptor's key does not parse")
    return fp, origin + rest, pub


def display_address(app, p):
    text = p.text("descriptor", limit=4000)
    ks = app.keystore
    body = strip_checksum(text)
    if "multi" in body:
        from .wallet_methods import registered_at_index, show_wallet_address

        w, change, index = registered_at_index(app, text)
        return show_wallet_address(app, w, change, index)
    kind = None
    for prefix, k in _KINDS:
        if body.startswith(prefix):
            kind = k
            inner = body[len(prefix) : len(body) - prefix.count("(")]
            if body[len(body) - prefix.count("(") :] != ")" * prefix.count("("):
                raise BadParams("descriptor is not closed")
            break
    if kind is None or "," in inner:
        raise BadParams("only pkh, sh(wpkh), wpkh and single-key tr descriptors name one of our addresses")
    fp, path, claimed = _single_key(inner)
    if fp != ks.fingerprint:
        raise BadParams("the descriptor's key is not this device's (fingerprint differs)")
    if len(path) > scripts.MAX_DEPTH:
        raise BadParams("path is deeper than %d levels" % scripts.MAX_DEPTH)
    ours = ks.root.derive(path).key
    if claimed.xonly() != ours.xonly() or (kind != "p2tr" and claimed.sec() != ours.sec()):
        raise BadParams("the descriptor's key is not this device's key at %s" % scripts.format_path(path))
    address = scripts.script_for(kind, ours).address(ks.network)
    lines = [address, "Path " + scripts.format_path(path)]
    if not scripts.is_standard_path(path, kind, scripts.coin_type(ks.network)):
        lines.append("Warning: unusual path for this address type")
    screen = {"screen": "display_address", "title": "Address", "address": address,
              "path": scripts.format_path(path), "lines": lines}
    if not app.ui.confirm(screen):
        raise Rejected("the officer did not confirm the address")
    return {"address": address}


def psbt_begin(app, p):
    app.upload.begin(p.uint("length"))
    return {"chunk_size": CHUNK}


def psbt_chunk(app, p):
    received = app.upload.chunk(p.uint("offset"), p.data("data", limit=CHUNK))
    return {"received": received}


def psbt_end(app, p):
    return {"sha256": app.upload.end()}


def sign_psbt(app, p):
    # Loaded on first use: the idle device keeps its RAM free.
    from . import psbt_signer, review

    digest = p.data("sha256", size=32)

    def busy(what):
        return lambda *a: app.pump(what)

    app.upload.check(digest, busy("checking"))
    ks = app.keystore
    app.signed_length = None
    from .wallet_methods import limits

    with open(app.upload.path, "rb") as f:
        rev = _parsed(review.review_psbt, f, ks, registry=app.registry(), limits=limits(app),
                      progress=busy("reviewing"))
    screen = review_screen(rev.to_dict())
    if not app.ui.confirm(screen):
        raise Rejected("the officer rejected the transaction")
    # What is signed must be what was reviewed.
    app.upload.check(digest, busy("checking"))
    sig_path = app.signed_path + ".sigs"

    def progress(i, n):
        app.pump("signing")

    with open(app.upload.path, "rb") as src:
        with open(app.signed_path, "wb") as dst:
            with open(sig_path, "w+b") as sigs:
                count = _parsed(psbt_signer.sign_psbt_stream, src, dst, ks, rev,
                                progress=progress, sig_stream=sigs)
    os.remove(sig_path)
    app.signed_length = os.stat(app.signed_path)[6]
    wire = rev.to_dict()
    wire.pop("fee_rate_sat_vb", None)  # no floats on the wire
    if len(wire["spends"]) + len(wire["change"]) > WIRE_OUTPUTS_MAX:
        # Keep the answer within one frame; the officer saw every output.
        wire["spends"] = wire["spends"][:WIRE_OUTPUTS_MAX // 2]
        wire["change"] = wire["change"][:WIRE_OUTPUTS_MAX // 2]
        wire["truncated"] = True
    return {"sha256": file_sha256(app.signed_path), "length": app.signed_length,
            "signatures": count, "review": wire}


def btc(sat):
    return "%d.%08d BTC" % (sat // 100000000, sat % 100000000)


def review_screen(r):
    """The transaction review as a screen: structured fields for the log and
    DebugLink, text lines for the display."""
    lines = []
    if r.get("wallet"):
        lines.append("From wallet " + r["wallet"])
    for s in r["spends"]:
        lines.append("Send %s to %s" % (btc(s["amount_sat"]), s["address"]))
    for c in r["change"]:
        lines.append("Change %s to %s" % (btc(c["amount_sat"]), c["address"]))
    lines.append("Fee %s (%s sat/vB)" % (btc(r["fee_sat"]), r["fee_rate_sat_vb"]))
    for w in r["warnings"]:
        lines.append("Warning: " + w)
    return {"screen": "review_tx", "title": "Send bitcoin?", "wallet": r.get("wallet"), "spends": r["spends"],
            "change": r["change"], "fee_sat": r["fee_sat"], "fee_rate_sat_vb": r["fee_rate_sat_vb"],
            "warnings": r["warnings"], "lines": lines}


def _parsed(fn, *args, **kw):
    # embit raises its own errors (and sometimes plain ValueError) on a PSBT
    # that breaks BIP174/370: report those as BAD_PSBT, not as a crash.
    try:
        return fn(*args, **kw)
    except DeviceError:
        raise
    except MemoryError:
        raise
    except OSError as e:
        raise StorageError("flash failed while working on the PSBT: %s" % (e,))
    except Exception as e:
        raise BadPsbt("PSBT does not parse: %s" % (e,))


def psbt_read(app, p):
    offset = p.uint("offset")
    size = p.uint("size", limit=READ_MAX)
    if app.signed_length is None:
        raise UploadError("no signed PSBT to read")
    with open(app.signed_path, "rb") as f:
        f.seek(min(offset, app.signed_length))
        return {"data": f.read(size)}


def audit_read(app, p):
    """A piece of the device's audit trail (every answered screen, one JSON
    line each), read as one stream across the board's files, oldest first."""
    offset = p.uint("offset")
    size = p.uint("size", limit=READ_MAX)
    parts = []
    for path in app.board.audit_files():
        try:
            parts.append((path, os.stat(path)[6]))
        except OSError:
            pass
    total = sum(n for _, n in parts)
    data = b""
    for path, n in parts:
        if offset < n and len(data) < size:
            with open(path, "rb") as f:
                f.seek(offset)
                data += f.read(size - len(data))
        offset = max(0, offset - n)
    return {"data": data, "total": total}


def sign_message(app, p):
    message = p.data("message", limit=MESSAGE_MAX)
    path = scripts.parse_path(p.text("path", limit=100))
    ks = app.keystore
    # Only plain printable ASCII is shown as text: control, direction and
    # zero-width characters could hide or reorder what the officer reads.
    if all(32 <= b < 127 for b in message):
        shown = message.decode()
    else:
        shown = "hex: " + hexlify(message).decode()
    key = ks.root.derive(path)
    address = scripts.script_for("p2pkh", key.key).address(ks.network)
    screen = {"screen": "sign_message", "title": "Sign message?", "path": scripts.format_path(path),
              "address": address, "message": shown, "lines": [shown, "with the key of " + address]}
    if not app.ui.confirm(screen):
        raise Rejected("the officer rejected the message")
    import secp256k1
    data = b"\x18Bitcoin Signed Message:\n" + _compact(len(message)) + message
    digest = hashes.double_sha256(data)
    sig = secp256k1.ecdsa_sign_recoverable(digest, key.key.secret)
    compact, recid = secp256k1.ecdsa_recoverable_signature_serialize_compact(sig)
    # BIP137 header for a compressed P2PKH key, as Bitcoin Core's signmessage.
    out = bytes([27 + 4 + recid]) + compact
    return {"signature": b2a_base64(out).decode().strip()}


def _compact(n):
    if n < 0xFD:
        return bytes([n])
    return b"\xfd" + n.to_bytes(2, "little")


def _all_methods():
    from .wallet_methods import METHODS as wallet_methods

    m = dict(_METHODS)
    m.update(wallet_methods)
    return m


_METHODS = {
    "ping": (ping, ()),
    "info": (info, ()),
    "get_xpub": (get_xpub, ("path",)),
    "get_descriptors": (get_descriptors, ("account",)),
    "display_address": (display_address, ("descriptor",)),
    "psbt_begin": (psbt_begin, ("length",)),
    "psbt_chunk": (psbt_chunk, ("offset", "data")),
    "psbt_end": (psbt_end, ()),
    "sign_psbt": (sign_psbt, ("sha256",)),
    "psbt_read": (psbt_read, ("offset", "size")),
    "sign_message": (sign_message, ("message", "path")),
    "audit_read": (audit_read, ("offset", "size")),
}

METHODS = _all_methods()

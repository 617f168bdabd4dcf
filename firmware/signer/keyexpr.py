"""BIP32 paths and key expressions: the device's one parser of them.

A path is text "m/84h/1h/0h": steps of decimal digits below 2^31, a hardened
step marked with `h` or `'` (BIP380 refuses `H`; so does every path the
device reads). A key expression is "[fingerprint/origin]KEY..." (BIP380):
`split_key` checks the origin and hands back the key text and whatever
follows it, which each caller reads by its own rule (a wallet's /<0;1>/*,
one address's /0/5).
"""

from embit import bip32
from embit.networks import NETWORKS

from .errors import BadParams

HARDENED = 0x80000000
MAX_DEPTH = 8  # a path parameter (get_xpub, sign_message)
MAX_ORIGIN_DEPTH = 14  # origin + change + index stays within 16 steps
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"


def only(s, chars):
    """True if every character of `s` is in `chars`."""
    for c in s:
        if c not in chars:
            return False
    return True


def parse_step(part):
    """One step: "84h" or "84'" -> 84 + 2^31, "5" -> 5; None if malformed."""
    hard = part[-1:] in ("h", "'")
    digits = part[:-1] if hard else part
    if not digits or len(digits) > 10 or not only(digits, _DIGITS):
        return None
    n = int(digits)
    if n >= HARDENED:
        return None
    return n + HARDENED if hard else n


def parse_steps(parts, what):
    """[indexes] of step texts; BadParams("bad <what> step 'x'") if one is malformed."""
    out = []
    for part in parts:
        n = parse_step(part)
        if n is None:
            raise BadParams("bad %s step %r" % (what, part))
        out.append(n)
    return out


def parse_path(text, max_depth=MAX_DEPTH):
    """"m/84h/1h/0h" -> [indexes]; BadParams if malformed or too deep."""
    parts = text.split("/")
    if parts[0] != "m":
        raise BadParams("path must start with m/: %r" % text[:40])
    if len(parts) - 1 > max_depth:
        raise BadParams("path is deeper than %d levels" % max_depth)
    return parse_steps(parts[1:], "path")


def format_steps(indexes):
    """[84 + 2^31, 1] -> "84h/1" (h notation, as descriptors are stored)."""
    return "/".join([("%dh" % (i - HARDENED)) if i >= HARDENED else "%d" % i for i in indexes])


def format_path(indexes):
    return "m/" + format_steps(indexes) if indexes else "m"


def parse_fingerprint(text):
    """4 bytes of 8 hex digits, or None."""
    if len(text) != 8 or not only(text, _HEX):
        return None
    return bytes(int(text[i : i + 2], 16) for i in range(0, 8, 2))


class KeyExpr:
    """A key expression split at its origin: `fingerprint` (4 bytes), `origin`
    ([indexes]), `key` (the key's text) and `rest` (what follows the key,
    "" or text starting with "/"). `who` names it in messages, with the
    fingerprint: "cosigner 2 (fingerprint 1a2b3c4d)"."""

    def __init__(self, who, fingerprint, origin, key, rest):
        self.who = who
        self.fingerprint = fingerprint
        self.origin = origin
        self.key = key
        self.rest = rest


def split_key(who, text, max_origin=MAX_ORIGIN_DEPTH):
    """KeyExpr of "[fp/origin]KEY..."; BadParams naming `who` if the origin is
    missing or malformed (the device needs every key's origin)."""
    if not text.startswith("["):
        raise BadParams("%s: key origin [fingerprint/path] is missing" % who)
    end = text.find("]")
    if end < 0:
        raise BadParams("%s: key origin is not closed" % who)
    steps = text[1:end].split("/")
    fp = parse_fingerprint(steps[0])
    if fp is None:
        raise BadParams("%s: origin fingerprint must be 8 hex digits" % who)
    who = "%s (fingerprint %s)" % (who, steps[0].lower())
    if len(steps) - 1 > max_origin:
        raise BadParams("%s: origin path is deeper than %d steps" % (who, max_origin))
    try:
        origin = parse_steps(steps[1:], "origin path")
    except BadParams as e:
        raise BadParams("%s: %s" % (who, e.message))
    rest = text[end + 1 :]
    slash = rest.find("/")
    key, rest = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if not key or "[" in key or "]" in key:
        raise BadParams("%s: one key must follow its origin" % who)
    return KeyExpr(who, fp, origin, key, rest)


def parse_xpub(who, text):
    """HDKey of an extended public key given as xpub or tpub; BadParams naming
    `who` otherwise (never echoing the text: it may be a private key)."""
    try:
        hd = bip32.HDKey.from_base58(text)
    except MemoryError:
        raise
    except Exception:
        raise BadParams("%s: not a valid extended public key" % who)
    if hd.is_private:
        raise BadParams("%s: is a private key; give the xpub" % who)
    if hd.version not in (NETWORKS["main"]["xpub"], NETWORKS["test"]["xpub"]):
        raise BadParams("%s: unsupported key version (SLIP-132?); give it as xpub or tpub" % who)
    return hd

"""Single-key scripts and paths: what the device can rebuild from its keys."""

from embit import script
from embit.bip32 import HARDENED_INDEX

from .errors import BadParams

# purpose -> single-key script type (BIP44/49/84/86)
PURPOSE_TYPES = {44: "p2pkh", 49: "p2sh-p2wpkh", 84: "p2wpkh", 86: "p2tr"}
TYPE_PURPOSE = {v: k for k, v in PURPOSE_TYPES.items()}
MAX_DEPTH = 8


def parse_path(text):
    """"m/84h/1h/0h" (h, H or ' for hardened) -> [indexes]; BadParams if malformed."""
    parts = text.split("/")
    if parts[0] != "m":
        raise BadParams("path must start with m/: %r" % text)
    out = []
    for part in parts[1:]:
        hard = part[-1:] in ("h", "H", "'")
        digits = part[:-1] if hard else part
        if not digits or any(c not in "0123456789" for c in digits) or len(digits) > 10:
            raise BadParams("bad path step %r in %r" % (part, text))
        n = int(digits)
        if n >= HARDENED_INDEX:
            raise BadParams("path step %r is out of range" % part)
        out.append(n + HARDENED_INDEX if hard else n)
    if len(out) > MAX_DEPTH:
        raise BadParams("path is deeper than %d levels" % MAX_DEPTH)
    return out


def format_path(indexes):
    return "/".join(["m"] + [("%dh" % (i - HARDENED_INDEX)) if i >= HARDENED_INDEX else str(i) for i in indexes])


def script_for(kind, pub):
    """scriptPubKey of a single-key output of `kind` for PublicKey `pub`."""
    if kind == "p2wpkh":
        return script.p2wpkh(pub)
    if kind == "p2sh-p2wpkh":
        return script.p2sh(script.p2wpkh(pub))
    if kind == "p2pkh":
        return script.p2pkh(pub)
    if kind == "p2tr":
        return script.p2tr(pub)
    raise ValueError(kind)


def coin_type(network):
    return 0 if network["name"] == "Mainnet" else 1


MAX_CHANGE_INDEX = 1000000


def is_standard_path(path, kind, coin):
    """purpose'/coin'/account'/chain/index with the purpose of `kind`, coin
    type `coin`, chain 0 or 1 and index <= 1,000,000."""
    H = HARDENED_INDEX
    return (
        len(path) == 5
        and path[0] == H + TYPE_PURPOSE.get(kind, -1)
        and path[1] == H + coin
        and path[2] >= H
        and path[3] in (0, 1)
        and path[4] <= MAX_CHANGE_INDEX
    )

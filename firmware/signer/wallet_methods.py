"""Request handlers for registered multisig wallets and the fee limits
(docs/protocol.md, "Registered multisig wallets", "Fee limits")."""

from binascii import hexlify

from .errors import BadParams, Rejected, StorageError
from .secrets import wipe
from .storage import DEFAULT_LIMITS

NAME_MAX = 16
DESCRIPTOR_MAX = 4000


def _name(p):
    name = p.text("name", limit=NAME_MAX)
    if not name or any(not 32 <= ord(c) < 127 for c in name):
        raise BadParams("a wallet name is 1 to %d printable ASCII characters" % NAME_MAX)
    return name


def _short(xpub):
    return xpub[:8] + "..." + xpub[-6:]



def _cosigners(w):
    out = []
    for c in w.cosigners:
        out.append({"fingerprint": c.fingerprint, "path": _path(c.origin), "xpub": c.xpub.to_base58(),
                    "ours": bool(c.ours)})
    return out


def _path(origin):
    from .scripts import format_path

    return format_path(origin)


def _policy_text(w):
    kinds = {"wsh": "P2WSH", "sh-wsh": "P2SH-P2WSH", "sh": "P2SH", "tr": "P2TR script path"}
    return "%d of %d, %s%s" % (w.threshold, len(w.cosigners), kinds.get(w.kind, w.kind),
                               ", sorted keys" if w.sorted else "")


def register_wallet(app, p):
    from . import wallets

    name = _name(p)
    text = p.text("descriptor", limit=DESCRIPTOR_MAX)
    ks = app.keystore
    w = wallets.parse_wallet(name, text, ks.network)
    ours = wallets.check_policy(w, ks)
    if len(ours) >= w.threshold:
        raise BadParams("this device holds %d of the keys and could spend alone; a custody wallet needs "
                        "its other cosigners" % len(ours))
    if w.kind == "tr" and isinstance(w.internal, wallets.Cosigner) and w.internal.ours:
        raise BadParams("the internal key is this device's: it could spend alone on the key path")
    reg = app.registry()
    _no_hidden_keys(w, ks, reg)
    if name in reg.names():
        old = reg.get(name)
        if old.descriptor != w.descriptor:
            raise BadParams("wallet name %s is already used for other keys" % name)
        # The same wallet again: nothing to approve, same proof.
        return {"name": name, "descriptor": w.descriptor, "registration": reg.add(w)}
    cos = _cosigners(w)
    lines = ["Wallet " + name, "Policy " + _policy_text(w)]
    if w.kind == "tr" and not (isinstance(w.internal, bytes) and w.internal == wallets.NUMS):
        lines.append("Warning: the internal key can spend alone (key path)")
    for i, c in enumerate(cos):
        lines.append("%d: [%s %s] %s%s" % (i + 1, hexlify(c["fingerprint"]).decode(), c["path"], _short(c["xpub"]),
                                           " (this device)" if c["ours"] else ""))
    screen = {"screen": "register_wallet", "title": "Register wallet?", "name": name,
              "policy": _policy_text(w), "threshold": w.threshold,
              "cosigners": [dict(c, fingerprint=hexlify(c["fingerprint"]).decode()) for c in cos], "lines": lines}
    if not app.ui.confirm(screen):
        raise Rejected("the officer did not approve wallet %s" % name)
    mac = reg.add(w)
    return {"name": name, "descriptor": w.descriptor, "registration": mac}


def _no_hidden_keys(w, ks, reg):
    """Refuse a key of this device that is not marked as its own: listed under
    another fingerprint, or ours in another registered wallet but not here.
    Either would let the device count towards a threshold twice (two
    registrations of one script, each holding one of its keys)."""
    for n, c in enumerate(w.cosigners):
        if not c.ours and len(c.origin) <= 8:
            if ks.root.derive(c.origin).key.sec() == c.xpub.key.sec():
                raise BadParams("cosigner %d: this device's own key at %s, listed under fingerprint %s"
                                % (n + 1, _path(c.origin), hexlify(c.fingerprint).decode()))
    mine = {}
    for other in reg.all():
        if other.name == w.name:
            continue
        for c in other.cosigners:
            mine[c.xpub.key.sec()] = (c.ours, other.name)
    for n, c in enumerate(w.cosigners):
        seen = mine.get(c.xpub.key.sec())
        if seen is not None and seen[0] != c.ours:
            raise BadParams("cosigner %d: this key is %s in wallet %s but %s here"
                            % (n + 1, "this device's" if seen[0] else "another cosigner's", seen[1],
                               "this device's" if c.ours else "another cosigner's"))


def list_wallets(app, p):
    reg = app.registry()
    out = []
    for name in reg.names():
        try:
            out.append({"name": name, "descriptor": reg.get(name).descriptor})
        except StorageError as e:
            out.append({"name": name, "error": e.message})
    return {"wallets": out}


def get_wallet(app, p):
    from . import wallets

    reg = app.registry()
    w = reg.get(_name(p))  # sets which cosigners are ours
    key = wallets.registration_key(app.keystore)
    try:
        mac = wallets.registration_mac(key, w.name, w.descriptor)
    finally:
        wipe(key)
    return {"name": w.name, "descriptor": w.descriptor, "threshold": w.threshold, "keys": _cosigners(w),
            "registration": mac}


def delete_wallet(app, p):
    name = _name(p)
    reg = app.registry()
    if name not in reg.names():
        raise BadParams("no wallet named %s" % name)
    screen = {"screen": "delete_wallet", "title": "Delete wallet?", "name": name,
              "lines": ["Delete wallet " + name + "?", "Its coins stay where they are."]}
    if not app.ui.confirm(screen):
        raise Rejected("the officer did not approve deleting wallet %s" % name)
    reg.delete(name)
    return {}


def show_wallet_address(app, w, change, index):
    d = w.derive(change, index)
    address = d.script_pubkey.address(app.keystore.network)
    screen = {"screen": "wallet_address", "title": "Address", "wallet": w.name, "address": address,
              "change": change, "index": index,
              "lines": ["Wallet " + w.name, "%s address %d" % ("Change" if change else "Receive", index), address]}
    if not app.ui.confirm(screen):
        raise Rejected("the officer did not confirm the address")
    return {"address": address}


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def registered_at_index(app, text):
    """(wallet, change, index) for a multisig descriptor at one index (keys
    ending /change/index) that is a registered wallet; BadParams otherwise."""
    from . import wallets

    body = wallets.strip_checksum(text)
    out, steps, i = [], [], 0
    while i < len(body):
        j = body.find("]", i)
        if j < 0:
            out.append(body[i:])
            break
        k = j + 1
        while k < len(body) and body[k] in _B58:
            k += 1
        out.append(body[i:k])
        rest = body[k:].split(",")[0].split(")")[0]
        parts = rest.split("/")
        if len(parts) != 3 or parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
            raise BadParams("every key must end with /change/index")
        steps.append((int(parts[1]), int(parts[2])))
        out.append("/<0;1>/*")
        i = k + len(rest)
    if not steps or any(s != steps[0] for s in steps) or steps[0][0] not in (0, 1):
        raise BadParams("every key must be at the same change (0 or 1) and index")
    probe = wallets.parse_wallet("probe", "".join(out), app.keystore.network)
    for w in app.registry().all():
        if w.descriptor == probe.descriptor:
            return w, steps[0][0], steps[0][1]
    raise BadParams("the descriptor is not a registered wallet of this device")


def wallet_address(app, p):
    w = app.registry().get(_name(p))
    index = p.uint("index", limit=(1 << 31) - 1)
    change = p.p.get("change", False)
    if change not in (True, False):
        raise BadParams("parameter 'change' must be true or false")
    return show_wallet_address(app, w, 1 if change else 0, index)


def limits(app):
    s = app.storage.settings()
    return {k: s.get(k, v) for k, v in DEFAULT_LIMITS.items()}


def get_limits(app, p):
    return limits(app)


def set_limits(app, p):
    new = {"fee_percent_tenths": p.uint("fee_percent_tenths", limit=1000),
           "fee_max_sat": p.uint("fee_max_sat", limit=2100000000000000)}
    old = limits(app)
    screen = {"screen": "set_limits", "title": "Change fee limits?", "old": old, "new": new,
              "lines": ["Fee limit %d.%d%% -> %d.%d%% of the amount sent" % (
                  old["fee_percent_tenths"] // 10, old["fee_percent_tenths"] % 10,
                  new["fee_percent_tenths"] // 10, new["fee_percent_tenths"] % 10),
                  "Fee limit %d -> %d sat" % (old["fee_max_sat"], new["fee_max_sat"])]}
    if not app.ui.confirm(screen):
        raise Rejected("the officer did not approve the new limits")
    s = app.storage.settings()
    s.update(new)
    app.storage.save_settings(s)
    return limits(app)


METHODS = {
    "register_wallet": (register_wallet, ("name", "descriptor")),
    "list_wallets": (list_wallets, ()),
    "get_wallet": (get_wallet, ("name",)),
    "delete_wallet": (delete_wallet, ("name",)),
    "wallet_address": (wallet_address, ("name", "index", "change")),
    "get_limits": (get_limits, ()),
    "set_limits": (set_limits, ("fee_percent_tenths", "fee_max_sat")),
}

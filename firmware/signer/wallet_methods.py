"""Request handlers for registered multisig wallets and the fee limits
(docs/protocol.md, "Registered multisig wallets", "Fee limits")."""

from binascii import hexlify

from . import screens
from .errors import BadParams, StorageError
from .keyexpr import format_path
from .secrets import wipe
from .storage import DEFAULT_LIMITS

NAME_MAX = 16
DESCRIPTOR_MAX = 4000


def _name(p):
    from .wallets import check_name

    return check_name(p.text("name", limit=NAME_MAX))


def _cosigners(w):
    out = []
    for c in w.cosigners:
        out.append({"fingerprint": c.fingerprint, "path": format_path(c.origin), "xpub": c.xpub.to_base58(),
                    "ours": bool(c.ours)})
    return out


def register_wallet(app, p):
    from . import wallets

    name = _name(p)
    text = p.text("descriptor", limit=DESCRIPTOR_MAX)
    ks = app.keystore
    w = wallets.parse_wallet(name, text, ks.network)
    ours = wallets.check_policy(w, ks)
    if len(ours) > 1:
        raise BadParams("this device holds %d of the keys (cosigners %s): one device, one vote"
                        % (len(ours), ", ".join(["%d" % (i + 1) for i in ours])))
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
    shown = [dict(c, fingerprint=hexlify(c["fingerprint"]).decode()) for c in _cosigners(w)]
    spends_alone = w.kind == "tr" and not (isinstance(w.internal, bytes) and w.internal == wallets.NUMS)
    policy = screens.policy_text(w.kind, w.threshold, len(w.cosigners), w.sorted)
    why = "the officer did not approve wallet %s" % name
    app.ui.require(screens.register_wallet(name, policy, w.threshold, shown, spends_alone), why)
    # Every character of every key: a shortened xpub leaves bits to grind a swapped cosigner.
    for n, c in enumerate(shown, 1):
        app.ui.require(screens.register_cosigner(n, len(shown), c), why)
    if isinstance(w.internal, wallets.Cosigner):
        i = w.internal
        c = {"fingerprint": hexlify(i.fingerprint).decode(), "path": format_path(i.origin),
             "xpub": i.xpub.to_base58(), "ours": bool(i.ours)}
        app.ui.require(screens.register_cosigner(None, len(shown), c), why)
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
                                % (n + 1, format_path(c.origin), hexlify(c.fingerprint).decode()))
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
    app.ui.require(screens.delete_wallet(name), "the officer did not approve deleting wallet %s" % name)
    reg.delete(name)
    return {}


def show_wallet_address(app, w, change, index):
    d = w.derive(change, index)
    address = d.script_pubkey.address(app.keystore.network)
    app.ui.require(screens.wallet_address(w.name, change, index, address), "the officer did not confirm the address")
    return {"address": address}


def registered_at_index(app, text):
    """(wallet, change, index) for a multisig descriptor at one index (keys
    ending /change/index) that is a registered wallet; BadParams otherwise."""
    from . import wallets

    probe, change, index = wallets.parse_wallet_at(text, app.keystore.network)
    for w in app.registry().all():
        if w.descriptor == probe.descriptor:
            return w, change, index
    raise BadParams("the descriptor is not a registered wallet of this device")


def wallet_address(app, p):
    w = app.registry().get(_name(p))
    index = p.uint("index", limit=(1 << 31) - 1)
    return show_wallet_address(app, w, 1 if p.flag("change") else 0, index)


def limits(app):
    s = app.storage.settings()
    return {k: s.get(k, v) for k, v in DEFAULT_LIMITS.items()}


def get_limits(app, p):
    return limits(app)


def set_limits(app, p):
    new = {"fee_percent_tenths": p.uint("fee_percent_tenths", limit=1000),
           "fee_max_sat": p.uint("fee_max_sat", limit=2100000000000000)}
    app.ui.require(screens.set_limits(limits(app), new), "the officer did not approve the new limits")
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

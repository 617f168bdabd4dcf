"""Which inputs and outputs of a PSBT are this device's, and in which wallet.

An input is ours when a derivation with our fingerprint gives the key it
claims and its script rebuilds from that key: as a single-key script
(p2wpkh, p2sh-p2wpkh, p2pkh, BIP86 p2tr) or as a registered wallet derived at
the path's chain/index. An output is ours on the same terms; whether it is
change is decided by the review (review.py), which owns the rules.
"""

from binascii import hexlify

from embit import base58, compact, script

from .errors import Refused, StorageError
from .hd import Parent
from .keyexpr import HARDENED, format_path
from .scripts import MAX_CHANGE_INDEX, is_standard_path
from .wallets import LEAF_VERSION

MAX_PATH_DEPTH = 16


class KeyCache:
    """Keys of the keystore at BIP32 paths. The hardened prefix of a path (the
    account) is derived once and kept, and so is each parent of a last
    non-hardened step (a branch): a key costs one child derivation."""

    def __init__(self, root, private=False):
        self.root = root
        self.private = private
        self.nodes = {}
        self.parents = {}

    def _node(self, path):
        n = len(path)
        while n and path[n - 1] < HARDENED:
            n -= 1
        prefix = tuple(path[:n])
        node = self.nodes.get(prefix)
        if node is None:
            if len(self.nodes) >= 8:
                self.nodes.clear()
            node = self.root.derive(list(prefix))
            if not self.private and node.is_private:  # a watch-only root is public already
                node = node.to_public()
            self.nodes[prefix] = node
        return node.derive(path[n:]) if n < len(path) else node

    def get(self, path):
        if not path or path[-1] >= HARDENED:
            return self._node(path)
        at = tuple(path[:-1])
        parent = self.parents.get(at)
        if parent is None:
            if len(self.parents) >= 8:
                self.parents.clear()
            parent = self.parents[at] = Parent(self._node(path[:-1]))
        return parent.child(path[-1])

    def clear(self):
        self.nodes.clear()
        self.parents.clear()


def rebuild(spk, pub):
    """The single-sig type of `spk` if it is `pub`'s script, else None."""
    t = spk.script_type()
    if t == "p2wpkh" and spk == script.p2wpkh(pub):
        return "p2wpkh"
    if t == "p2tr" and spk == script.p2tr(pub):
        return "p2tr"
    if t == "p2sh" and spk == script.p2sh(script.p2wpkh(pub)):
        return "p2sh-p2wpkh"
    if t == "p2pkh" and spk == script.p2pkh(pub):
        return "p2pkh"
    return None


def _derivations(scope):
    """(pubkey, DerivationPath, taproot leaf hashes or None) of every derivation."""
    out = []
    for pub in scope.bip32_derivations:
        out.append((pub, scope.bip32_derivations[pub], None))
    for pub in scope.taproot_bip32_derivations:
        leaves, der = scope.taproot_bip32_derivations[pub]
        out.append((pub, der, leaves))
    return out


def _claims(scope, fingerprint):
    """(pubkey, path, taproot leaf hashes or None) of derivations with our fingerprint."""
    return [(pub, der.derivation, leaves) for pub, der, leaves in _derivations(scope) if der.fingerprint == fingerprint]


def _no_match(where, scope, at, verb):
    """Refused for a claim of our key at `at` that no single-sig script and no
    registered wallet explains. One that looks like a multisig wallet (a
    witness script, several cosigners' keys) is named as an unregistered
    wallet, with the command that registers it: not as tampering."""
    keys = len(_derivations(scope))
    if keys > 1 or scope.witness_script is not None:
        raise Refused("%s: %s a multisig wallet (%d keys, this device's at %s) that is not registered on this "
                      "device: register it first (amanat wallet register) and the officer approves it here"
                      % (where, verb, keys, at))
    raise Refused("%s: script does not match the key at %s" % (where, at))


def _our_key(where, keys, pub, path, leaves):
    """Our HDKey at `path` if it is the claimed key; Refused otherwise."""
    at = format_path(path)
    if len(path) > MAX_PATH_DEPTH:
        raise Refused("%s: derivation path %s is too long" % (where, at))
    hd = keys.get(path)
    if leaves is None:
        same = hd.sec() == pub.sec()
    else:
        same = hd.xonly() == pub.xonly()
    if not same:
        raise Refused("%s: key at %s is not this device's key for that path" % (where, at))
    return hd


def _single(spk, hd, leaves):
    kind = rebuild(spk, hd.get_public_key())
    if kind == "p2tr" and leaves:
        return None  # a key in a script leaf is not a BIP86 key-path key
    return kind


# --- networks

# purposes whose second step is the coin type (BIP44/48/49/84/86/87)
COIN_PURPOSES = (44, 48, 49, 84, 86, 87)
PUB_VERSIONS = ("xpub", "ypub", "zpub", "Ypub", "Zpub")


def _wrong_coin(path, coin):
    if len(path) < 2 or path[0] < HARDENED or path[1] < HARDENED:
        return False
    return (path[0] - HARDENED) in COIN_PURPOSES and path[1] - HARDENED != coin


def _refuse_coin(where, der):
    path = der.derivation
    raise Refused("%s: key [%s] %s is for another network (coin type %dh)"
                  % (where, hexlify(der.fingerprint).decode(), format_path(path), path[1] - HARDENED))


def check_coins(where, scope, coin, skip=()):
    """Refused if a derivation's path is for another network's coin type;
    derivations whose pubkey is in `skip` are left to the caller."""
    for pub, der, _ in _derivations(scope):
        if _wrong_coin(der.derivation, coin) and pub not in skip:
            _refuse_coin(where, der)


def check_global_xpubs(view, net):
    """Refused if a global xpub (PSBT_GLOBAL_XPUB) is of another network."""
    allowed = [net[k] for k in PUB_VERSIONS if k in net]
    for xpub in view.global_xpubs():
        if xpub[:4] not in allowed:
            text = base58.encode_check(xpub)
            raise Refused("global xpub %s...%s is for another network" % (text[:8], text[-6:]))


# --- registered wallets

MAX_INDEX = MAX_CHANGE_INDEX
class _Single:
    """Marks our single-key keys (OutputMatch.wallet, and owners). Not a str,
    so that no registered wallet's name can pass for it."""

    def __str__(self):
        return "single-sig"


SINGLE = _Single()


def account_of(path):
    """The single-sig account a key at `path` belongs to, as shown: "account 3"
    for purpose'/coin'/3'/chain/index (every script type of an account is
    one wallet), else the keys below the path's parent."""
    if len(path) == 5 and path[0] >= HARDENED and path[1] >= HARDENED and path[2] >= HARDENED:
        return "account %d" % (path[2] - HARDENED)
    return "keys below %s" % format_path(path[:-2])


def owner_of(mine):
    """Whose an input classify_input found ours is: a registered wallet's
    name, or (SINGLE, account) for one of our single-sig accounts. Every
    input signed must have the same owner; change must return to it."""
    if mine[0] == "wallet":
        return mine[1].name
    return (SINGLE, account_of(mine[1][2]))


def output_owner(match):
    """The owner (as owner_of) an OutputMatch pays to."""
    return (SINGLE, account_of(match.path)) if match.wallet == SINGLE else match.wallet


def owner_text(owner):
    return owner if isinstance(owner, str) else "single-sig " + owner[1]


def _plain(rest):
    """rest of a path below a cosigner's xpub: chain 0/1 and index <= 1,000,000."""
    return len(rest) == 2 and rest[0] in (0, 1) and rest[1] <= MAX_INDEX


def _data(x):
    return None if x is None else x.data


def _xonly(k):
    if k is None or not isinstance(k, (bytes, bytearray)):
        return None if k is None else k.xonly()
    return bytes(k[1:]) if len(k) == 33 else bytes(k)


class Wallets:
    """The registered wallets as small records (name, cosigners' fingerprints
    and origins), loaded from flash on first use; a Wallet object is kept only
    for the last few wallets a PSBT field pointed at (the ESP32 has no room
    for all of them)."""

    def __init__(self, registry, warnings):
        self.registry = registry
        self.warnings = warnings
        self.index = None
        self.cache = []  # [(name, Wallet)], most recent last
        self.last = None  # (name, change, index, Derived)

    def _load(self):
        self.index = []
        if self.registry is None:
            return
        names = list(self.registry.names())
        names.sort()
        for name in names:
            try:
                w = self.registry.get(name)
            except StorageError as e:
                self.warnings.append("%s (not used)" % e.message)
                continue
            keys = list(w.cosigners)
            if hasattr(w.internal, "origin"):  # a taproot internal key expression
                keys.append(w.internal)
            cos = [(c.fingerprint, list(c.origin), bool(c.ours)) for c in keys]
            self.index.append((name, cos))
            self._keep(name, w)

    def _keep(self, name, w):
        self.cache = [e for e in self.cache if e[0] != name][-1:] + [(name, w)]

    def get(self, name):
        for n, w in self.cache:
            if n == name:
                return w
        w = self.registry.get(name)
        self._keep(name, w)
        return w

    def under(self, fingerprint, path, ours):
        """[(wallet name, path below the xpub)] for cosigners with this
        fingerprint (ours only if `ours`) whose origin starts `path`."""
        if self.index is None:
            self._load()
        out = []
        for name, cos in self.index:
            for fp, origin, mine in cos:
                if fp != fingerprint or (ours and not mine):
                    continue
                n = len(origin)
                if len(path) >= n and path[:n] == origin:
                    out.append((name, path[n:]))
        return out

    def derived(self, name, change, index):
        last = self.last
        if last is not None and last[0] == name and last[1] == change and last[2] == index:
            return last[3]
        d = self.get(name).derive(change, index)
        self.last = (name, change, index, d)
        return d

    def rebuilds(self, name, rest, spk):
        return _plain(rest) and _data(self.derived(name, rest[0], rest[1]).script_pubkey) == spk.data


def _wallet_claim(wallets, fp, path, spk):
    """(found, unusual, first) for one claim of our key: (wallet, change,
    index) whose script is `spk`, a wallet under which the path is unusual,
    the first wallet the path points into (each None if there is none)."""
    unusual = first = None
    for name, rest in wallets.under(fp, path, True):
        first = first or name
        if not _plain(rest):
            unusual = unusual or name
        elif wallets.rebuilds(name, rest, spk):
            return (name, rest[0], rest[1]), None, first
    return None, unusual, first


class WalletInput:
    """An input of a registered wallet: what the signer needs and what it weighs."""

    def __init__(self, name, change, index, weight, segwit):
        self.name = name
        self.change = change
        self.index = index
        self.weight = weight
        self.segwit = segwit


def classify_input(i, inp, spk, keys, fingerprint, wallets=None):
    """None if input i is not ours; ("single", (type, HDKey, path)) or
    ("wallet", WalletInput) if it is; Refused if a claim of our key is false."""
    where = "input %d" % i
    single = hit = None
    for pub, path, leaves in _claims(inp, fingerprint):
        hd = _our_key(where, keys, pub, path, leaves)
        kind = _single(spk, hd, leaves)
        if kind is not None:
            single = single or (kind, hd, path)
            continue
        at = format_path(path)
        if wallets is None:
            _no_match(where, inp, at, "spends from")
        found, unusual, first = _wallet_claim(wallets, fingerprint, path, spk)
        if found is None and unusual is not None:
            raise Refused("%s: this device's key at %s is at an unusual path for wallet %s "
                          "(change 0 or 1, index up to %d)" % (where, at, unusual, MAX_INDEX))
        if found is None and first is not None:
            raise Refused("%s: claims this device's key at %s but its script is not wallet %s's at that path"
                          % (where, at, first))
        if found is None:
            _no_match(where, inp, at, "spends from")
        if hit is not None and hit != found:
            raise Refused("%s: this device's keys point at different wallet addresses" % where)
        hit = found
    if hit is not None:
        return "wallet", _wallet_input(where, inp, hit, wallets, fingerprint)
    if single is not None:
        return "single", _single_input(where, inp, single)
    return None


def _single_input(where, inp, mine):
    kind, hd, path = mine
    if kind == "p2tr" and inp.taproot_merkle_root is not None:
        raise Refused("%s: taproot script tree present; only BIP86 key-path spends are supported" % where)
    if kind == "p2sh-p2wpkh" and inp.redeem_script is not None:
        if inp.redeem_script != script.p2wpkh(hd.get_public_key()):
            raise Refused("%s: redeem script does not match the key at %s" % (where, format_path(path)))
    return mine


def match_input(i, inp, spk, keys, fingerprint):
    """(type, derived HDKey, path) if input i is ours (single-sig), None if not."""
    found = classify_input(i, inp, spk, keys, fingerprint)
    return None if found is None else found[1]


def _wallet_input(where, inp, hit, wallets, fingerprint):
    name, change, index = hit
    w = wallets.get(name)
    d = wallets.derived(name, change, index)
    what = "%s: %%s is not wallet %s's" % (where, name)
    if w.kind == "tr":
        lh = d.leaf_hash
        if inp.taproot_internal_key is not None and inp.taproot_internal_key.xonly() != _xonly(d.internal_key):
            raise Refused(what % "taproot internal key")
        if inp.taproot_merkle_root is not None and inp.taproot_merkle_root != lh:
            raise Refused(what % "taproot merkle root")
        want = d.leaf_script.data + bytes([LEAF_VERSION])
        for cb in inp.taproot_scripts:
            if bytes(cb) != bytes(d.control_block) or inp.taproot_scripts[cb] != want:
                raise Refused(what % "taproot leaf script")
        for _, _, leaves in _claims(inp, fingerprint):
            if leaves and lh not in leaves:
                raise Refused("%s: taproot derivation of this device's key names a leaf that is not wallet %s's"
                              % (where, name))
    else:
        if inp.witness_script is not None and inp.witness_script.data != _data(d.witness_script):
            raise Refused(what % "witness script")
        if inp.redeem_script is not None and inp.redeem_script.data != _data(d.redeem_script):
            raise Refused(what % "redeem script")
    weight, segwit = _wallet_weight(w, d, inp)
    return WalletInput(name, change, index, weight, segwit)


def our_cosigners(w):
    return [k for k in range(len(w.cosigners)) if w.cosigners[k].ours]


def _wallet_weight(w, d, inp):
    """(weight units, segwit) of a wallet input once signed by `threshold`
    cosigners: ours with low-R signatures (72 bytes with sighash and push),
    the others' counted one byte longer."""
    k = w.threshold
    mine = min(k, len(our_cosigners(w)))
    if w.kind == "tr":
        sig = 66 if inp.sighash_type else 65
        leaf = len(d.leaf_script.data)
        cb = len(d.control_block)
        n = len(w.cosigners)
        wit = _clen(n + 2) + k * sig + (n - k) + _clen(leaf) + leaf + _clen(cb) + cb
        return 4 * 41 + wit, True
    sigs = mine * 72 + (k - mine) * 73
    if w.kind == "sh":
        rs = len(d.redeem_script.data)
        ss = 1 + sigs + (1 if rs < 76 else 2 if rs < 256 else 3) + rs
        return 4 * (40 + _clen(ss) + ss), False
    ws = len(d.witness_script.data)
    wit = _clen(k + 2) + 1 + sigs + _clen(ws) + ws
    scriptsig = 35 if w.kind == "sh-wsh" else 0
    return 4 * (41 + scriptsig) + wit, True


def _clen(n):
    return len(compact.to_bytes(n))


# --- outputs


class OutputMatch:
    """What an output of ours is: `wallet` (name, or SINGLE for our single-key
    accounts), `path` of our key, `std` if its path is the standard one
    (change-eligible), `unusual` (wallet name) for a path under a wallet's xpub
    that is not chain/index."""

    def __init__(self, wallet, path, std):
        self.wallet = wallet
        self.path = path
        self.std = std


def match_output(j, out, keys, fingerprint, coin, wallets=None):
    """OutputMatch if output j pays to our keys or to a registered wallet,
    a warning text for one that only looks like it, None otherwise; Refused
    if it claims our key and its script does not rebuild from it."""
    where = "output %d" % j
    spk = out.script_pubkey
    single = hit = unusual = None
    single_pubs = []
    for pub, path, leaves in _claims(out, fingerprint):
        hd = _our_key(where, keys, pub, path, leaves)
        kind = _single(spk, hd, leaves)
        if kind is not None:
            std = is_standard_path(path, kind, coin)
            if single is None or (std and not single.std):
                single = OutputMatch(SINGLE, path, std)
            single_pubs.append(pub)
            continue
        at = format_path(path)
        found = bad = None
        if wallets is not None:
            found, bad, first = _wallet_claim(wallets, fingerprint, path, spk)
        if found is not None:
            hit = hit or OutputMatch(found[0], path, True)
        elif bad is not None:
            unusual = unusual or OutputMatch(bad, path, False)
        elif wallets is not None and first is not None:
            raise Refused("%s: claims this device's key at %s but its script is not wallet %s's at that path"
                          % (where, at, first))
        else:
            if _wrong_coin(path, coin):
                _refuse_coin(where, _der(out, pub, leaves))
            _no_match(where, out, at, "pays to")
    check_coins(where, out, coin, single_pubs)
    if hit is not None:
        return hit
    if single is not None:
        return single
    if unusual is not None:
        return unusual
    if wallets is not None:
        return _others(j, out, fingerprint, wallets)
    return None


def _der(scope, pub, leaves):
    return scope.bip32_derivations[pub] if leaves is None else scope.taproot_bip32_derivations[pub][1]


def _others(j, out, fingerprint, wallets):
    """An output that names only other cosigners' keys: a wallet's address if
    its script rebuilds from the wallet, a warning if it does not."""
    named = None
    for pub, der, _ in _derivations(out):
        if der.fingerprint == fingerprint:
            continue
        for name, rest in wallets.under(der.fingerprint, der.derivation, False):
            if wallets.rebuilds(name, rest, out.script_pubkey):
                w = wallets.get(name)
                k = our_cosigners(w)
                path = list(w.cosigners[k[0]].origin) + rest if k else der.derivation
                return OutputMatch(name, path, True)
            named = named or name
    if named is not None:
        return "output %d names keys of wallet %s but is not one of its addresses" % (j, named)
    return None

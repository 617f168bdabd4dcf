"""Transaction review: what a PSBT spends, what comes back, what it costs.

review_psbt(stream, keystore, registry=None, limits=None) reads a PSBT (v0 or
v2/BIP370) from a seekable file with embit's PSBTView, one input or output
scope at a time (a previous transaction is hashed as it streams past, never
held whole), and returns a Review for the screens, or raises BadPsbt (does
not parse, breaks BIP174/370) or Refused (a rule below) naming the input,
output or key at fault.

BadPsbt also covers what embit lets through and other parsers would read
differently: duplicate keys in any scope, v2 fields in a v0 PSBT (or a global
transaction in a v2 one), an unsigned transaction with scriptSigs or witness,
a previous transaction that does not fill its field, data after the end.

An input is ours when a BIP32 (or taproot) derivation with our fingerprint
gives the key it claims and the input's script rebuilds from that key:
- single-sig: p2wpkh, p2sh-p2wpkh, p2pkh or p2tr (BIP86 key path, no tree);
- a registered wallet (wallets.py, `registry`): the path is one of our
  cosigners' origins plus chain/index, and the wallet derived there gives the
  input's script (and its witness/redeem script, taproot leaf, internal key
  and merkle root, when the PSBT has them). Those are signed on the multisig
  script (wsh, sh-wsh, sh) or the multi_a leaf (tr script path).
All signed inputs come from one wallet; our single-key accounts count as one.

Refused:
- no input is ours; inputs of ours from more than one wallet;
- a derivation with our fingerprint (input or output) whose key is not ours at
  that path, or whose script does not rebuild from it or from the registered
  wallet its path points into (a cosigner's key swapped in a change output);
- our key in a wallet input at a path other than chain 0/1, index up to
  1,000,000 below our xpub;
- a derivation whose path has the coin type of another network (44/48/49/84/
  86/87 purposes), a global xpub of another network (an output to our own
  single-sig key at such a path is shown as a spend with a warning instead);
- an input of unknown amount (no witness_utxo nor non_witness_utxo), a
  non_witness_utxo whose txid is not the prevout's, or one that disagrees with
  the witness_utxo;
- a segwit v0 or legacy input of ours without non_witness_utxo (the segwit v0
  fee attack: only the full previous transaction proves the amount); and a
  foreign one without it, unless a taproot input we sign commits to every
  amount (else two PSBTs of one transaction, each passing one of our inputs
  off as foreign with a tiny amount, show small fees that add up to a large
  one);
- the same prevout spent twice; outputs worth more than inputs; no outputs;
- an input of ours with a sighash type other than ALL (or DEFAULT on taproot);
- a fee above the limits: fee_percent_tenths / 10 % of the amount sent (of the
  inputs when nothing leaves), or fee_max_sat.

Change: back to the wallet every signed input comes from, at a standard path.
Single-sig: the standard path for its script type (44/49/84/86, coin 0' on
main and 1' elsewhere, hardened account, chain 0 or 1, index <= 1,000,000). A
wallet: its script rebuilds from the wallet at chain 0 or 1, index <=
1,000,000. Anything else is shown as a spend.

Warnings, shown with the review (the officer decides):
- "input N is not signed by this device" (one line, listing every such input);
- an output of ours at an unusual path, or of another of our wallets (shown as
  a spend); an output naming a wallet's cosigners whose script is not the
  wallet's;
- fee above 0.01 BTC, or above 5% of the amount sent (of the inputs when
  nothing leaves the wallet); fee rate below 1 sat/vB;
- locktime set (block height or unix time);
- an output with no address (shown as hex), an OP_RETURN output with value;
- a wallet record in flash that does not verify (never used).

For v2, nLockTime follows BIP370 (the inputs' required locktimes win over the
fallback); embit's view knows only the fallback, so the signer is handed ours.

vsize is an estimate of the signed transaction: single-sig inputs at their
exact size with a 71-byte (low-R) ECDSA signature; wallet inputs with the
wallet's threshold of signatures over its own scripts; foreign p2wsh and bare
p2sh inputs as 2-of-3 multisig; unknown scripts as p2wpkh.
"""

import hashlib
from binascii import hexlify

from embit import base58, compact, hashes, script
from embit.networks import NETWORKS
from embit.psbt import read_string, skip_string

from .errors import BadPsbt, Refused, StorageError
from .psbt_view import MAX_MONEY, PARSE_ERRORS, check_utxo, open_view, read_input, read_output
from .scripts import MAX_CHANGE_INDEX, format_path, is_standard_path
from .storage import DEFAULT_LIMITS

HARDENED = 0x80000000
MAX_PATH_DEPTH = 16
FEE_ABSURD_SAT = 1000000
LOCKTIME_THRESHOLD = 500000000
SIGHASH_DEFAULT = 0
SIGHASH_ALL = 1
LEAF_VERSION = 0xC0

# Weight units of one signed input (outpoint, sequence, scriptSig, witness).
INPUT_WEIGHT = {
    "p2pkh": 588,  # (36 + 4 + 1 + 72 + 34) * 4
    "p2sh-p2wpkh": 363,  # (36 + 4 + 1 + 23) * 4 + 1 + 72 + 34
    "p2wpkh": 271,  # 41 * 4 + 1 + 72 + 34
    "p2tr": 230,  # 41 * 4 + 1 + 65
    "p2wsh": 418,  # 2-of-3: 41 * 4 + 1 + 1 + 2 * 73 + 106
    "p2sh": 1188,  # 2-of-3: (36 + 4 + 3 + 254) * 4
}
SEGWIT_TYPES = ("p2sh-p2wpkh", "p2wpkh", "p2tr", "p2wsh")



class KeyCache:
    """Keys of the keystore at BIP32 paths. The hardened prefix of a path (the
    account) is derived once and kept; only the last steps are derived per key."""

    def __init__(self, root, private=False):
        self.root = root
        self.private = private
        self.nodes = {}

    def get(self, path):
        n = len(path)
        while n and path[n - 1] < HARDENED:
            n -= 1
        prefix = tuple(path[:n])
        node = self.nodes.get(prefix)
        if node is None:
            if len(self.nodes) >= 8:
                self.nodes.clear()
            node = self.root.derive(list(prefix))
            if not self.private:
                node = node.to_public()
            self.nodes[prefix] = node
        return node.derive(path[n:]) if n < len(path) else node

    def clear(self):
        self.nodes.clear()


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


def _check_coins(where, scope, coin, skip=()):
    """Refused if a derivation's path is for another network's coin type;
    derivations whose pubkey is in `skip` are left to the caller."""
    for pub, der, _ in _derivations(scope):
        if _wrong_coin(der.derivation, coin) and pub not in skip:
            _refuse_coin(where, der)


def _check_global_xpubs(view, net):
    """Refused if a global xpub (PSBT_GLOBAL_XPUB) is of another network."""
    s = view.stream
    s.seek(view.offset + len(view.MAGIC))
    allowed = [net[k] for k in PUB_VERSIONS if k in net]
    while True:
        key = read_string(s)
        if not key:
            return
        if key[0] == 1 and len(key) == 79 and key[1:5] not in allowed:
            text = base58.encode_check(key[1:])
            raise Refused("global xpub %s...%s is for another network" % (text[:8], text[-6:]))
        skip_string(s)


# --- registered wallets

MAX_INDEX = MAX_CHANGE_INDEX
class _Single:
    """Our single-key accounts, as one wallet when inputs are compared. Not a
    str, so that no registered wallet's name can pass for it."""

    def __str__(self):
        return "single-sig"


SINGLE = _Single()


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
            raise Refused("%s: script does not match the key at %s" % (where, at))
        found, unusual, first = _wallet_claim(wallets, fingerprint, path, spk)
        if found is None and unusual is not None:
            raise Refused("%s: this device's key at %s is at an unusual path for wallet %s "
                          "(change 0 or 1, index up to %d)" % (where, at, unusual, MAX_INDEX))
        if found is None and first is not None:
            raise Refused("%s: claims this device's key at %s but its script is not wallet %s's at that path"
                          % (where, at, first))
        if found is None:
            raise Refused("%s: script does not match the key at %s" % (where, at))
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


def leaf_hash(leaf_script):
    return hashes.tagged_hash("TapLeaf", bytes([LEAF_VERSION]) + leaf_script.serialize())


def _wallet_input(where, inp, hit, wallets, fingerprint):
    name, change, index = hit
    w = wallets.get(name)
    d = wallets.derived(name, change, index)
    what = "%s: %%s is not wallet %s's" % (where, name)
    if w.kind == "tr":
        lh = leaf_hash(d.leaf_script)
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
            raise Refused("%s: script does not match the key at %s" % (where, at))
    _check_coins(where, out, coin, single_pubs)
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


def address_of(spk, network):
    try:
        return spk.address(network)
    except PARSE_ERRORS:
        pass
    data = spk.data
    if data[:1] == b"\x6a":
        return "OP_RETURN " + hexlify(data[1:]).decode()
    return "script " + hexlify(data).decode()


def _input_weight(kind, inp, spk):
    if kind is None:
        kind = spk.script_type()
        if kind == "p2sh" and inp.redeem_script is not None and inp.redeem_script.script_type() == "p2wpkh":
            kind = "p2sh-p2wpkh"
    w = INPUT_WEIGHT.get(kind, INPUT_WEIGHT["p2wpkh"])
    if kind == "p2tr" and inp.sighash_type:
        w += 1  # explicit sighash byte
    return w, kind in SEGWIT_TYPES or kind not in INPUT_WEIGHT


def _input_list(idx):
    return ", ".join(["%d" % i for i in idx])


class Review:
    def __init__(self):
        self.version = 0
        self.num_inputs = 0
        self.num_outputs = 0
        self.locktime = 0
        self.spends = []
        self.change = []
        self.fee_sat = 0
        self.vsize = 0
        self.fee_rate_sat_vb = 0.0
        self.warnings = []
        self.ours = []
        # registered wallet the signed inputs belong to (None: single-sig)
        self.wallet = None
        # for the signer: per entry of `ours`, None (single-sig) or the
        # wallet address's (change, index); the Wallet and our cosigners in it
        self.plan = []
        self.wallet_obj = None
        self.cosigners = []
        # BIP341 sha_amounts and sha_scriptpubkeys, for the taproot sighash
        self.sha_amounts = None
        self.sha_scriptpubkeys = None

    def to_dict(self):
        return {
            "version": self.version,
            "inputs": self.num_inputs,
            "outputs": self.num_outputs,
            "locktime": self.locktime,
            "spends": self.spends,
            "change": self.change,
            "fee_sat": self.fee_sat,
            "vsize": self.vsize,
            "fee_rate_sat_vb": self.fee_rate_sat_vb,
            "warnings": self.warnings,
            "ours": self.ours,
            "wallet": self.wallet,
        }


class _Locktime:
    """BIP370 locktime: the per-input requirements win over the fallback."""

    def __init__(self):
        self.any = False
        self.time_ok = True
        self.height_ok = True
        self.time = 0
        self.height = 0

    def add(self, i, inp):
        t = inp.unknown.get(b"\x11")
        h = inp.unknown.get(b"\x12")
        if t is None and h is None:
            return
        self.any = True
        if t is None:
            self.time_ok = False
        else:
            t = self._value(i, t)
            if t < LOCKTIME_THRESHOLD:
                raise BadPsbt("input %d: required time locktime below 500000000" % i)
            self.time = max(self.time, t)
        if h is None:
            self.height_ok = False
        else:
            h = self._value(i, h)
            if h == 0 or h >= LOCKTIME_THRESHOLD:
                raise BadPsbt("input %d: required height locktime out of range" % i)
            self.height = max(self.height, h)

    def _value(self, i, v):
        if len(v) != 4:
            raise BadPsbt("input %d: required locktime is not 4 bytes" % i)
        return int.from_bytes(v, "little")

    def result(self, fallback):
        if not self.any:
            return fallback
        if self.height_ok:
            return self.height
        if self.time_ok:
            return self.time
        raise BadPsbt("inputs require both a height and a time locktime")


def _nothing():
    pass


def review_psbt(stream, keystore, registry=None, limits=None, progress=None):
    """Review of the PSBT in `stream` (seekable, binary) for `keystore`, with
    the registered wallets of `registry` (None: none) and the fee `limits`
    (DEFAULT_LIMITS if None). `progress()` is called after every input and
    output, so that the device keeps answering pings on a long PSBT."""
    progress = progress or _nothing
    view = open_view(stream)
    net = keystore.network
    coin = 0 if net["bech32"] == NETWORKS["main"]["bech32"] else 1
    fp = keystore.fingerprint
    keys = KeyCache(keystore.root)
    r = Review()
    r.version = view.version or 0
    r.num_inputs = view.num_inputs
    r.num_outputs = view.num_outputs
    if r.num_outputs == 0:
        raise Refused("the transaction has no outputs")
    _check_global_xpubs(view, net)
    wallets = Wallets(registry, r.warnings) if registry is not None else None

    sha_amounts = hashlib.sha256()
    sha_spks = hashlib.sha256()
    locks = _Locktime()
    seen = {}  # 30-bit tag of a prevout -> indices of inputs with that tag
    foreign = []
    unproven = []  # foreign non-taproot inputs without their previous transaction
    signs_taproot = False
    owner = None  # (first input we sign, its wallet name or SINGLE)
    total_in = 0
    weight = 0
    segwit = 0
    any_final_seq = True
    pos = view.first_scope
    for i in range(view.num_inputs):
        progress()
        vin, inp, pos = read_input(view, i, pos)
        _check_duplicate(view, seen, i, vin)
        utxo = check_utxo(i, inp, vin)
        spk = utxo.script_pubkey
        total_in += utxo.value
        sha_amounts.update(utxo.value.to_bytes(8, "little"))
        sha_spks.update(spk.serialize())
        if vin.sequence != 0xFFFFFFFF:
            any_final_seq = False
        if r.version == 2:
            locks.add(i, inp)
        _check_coins("input %d" % i, inp, coin)
        mine = classify_input(i, inp, spk, keys, fp, wallets)
        if mine is None:
            foreign.append(i)
            if spk.script_type() != "p2tr" and inp._txhash is None:
                unproven.append(i)
            w, sw = _input_weight(None, inp, spk)
        else:
            name = SINGLE if mine[0] == "single" else mine[1].name
            if owner is None:
                owner = (i, name)
            elif owner[1] != name:
                raise Refused("inputs %d and %d belong to different wallets (%s, %s)" % (owner[0], i, owner[1], name))
            kind = mine[1][0] if mine[0] == "single" else wallets.get(name).kind
            _check_signable(i, inp, kind)
            signs_taproot = signs_taproot or kind in ("p2tr", "tr")
            r.ours.append(i)
            if mine[0] == "single":
                r.plan.append(None)
                w, sw = _input_weight(kind, inp, spk)
            else:
                r.plan.append((mine[1].change, mine[1].index))
                w, sw = mine[1].weight, mine[1].segwit
        weight += w
        segwit += sw
    if not r.ours:
        raise Refused("no input of this PSBT belongs to this device")
    if unproven and not signs_taproot:
        # Its amount comes from a bare witness_utxo: in another PSBT of the
        # same transaction one of our inputs could be the unproven one, and
        # two approvals of small fees make one transaction with a large fee.
        # (A taproot signature commits to every amount, so then a lie here
        # only invalidates our own signature.)
        raise Refused("input %d: not this device's, and without its previous transaction (non_witness_utxo) "
                      "its amount, so the fee, cannot be verified" % unproven[0])
    if owner[1] != SINGLE:
        r.wallet = owner[1]
        r.wallet_obj = wallets.get(r.wallet)
        r.cosigners = our_cosigners(r.wallet_obj)
    r.locktime = locks.result(view.locktime) if r.version == 2 else view.locktime
    r.sha_amounts = sha_amounts.digest()
    r.sha_scriptpubkeys = sha_spks.digest()

    total_out = 0
    sent = 0
    for j in range(view.num_outputs):
        progress()
        out, pos = read_output(view, j, pos)
        spk = out.script_pubkey
        if out.value < 0 or out.value > MAX_MONEY:
            raise Refused("output %d: amount out of range" % j)
        total_out += out.value
        weight += 4 * (8 + len(compact.to_bytes(len(spk.data))) + len(spk.data))
        address = address_of(spk, net)
        mine = match_output(j, out, keys, fp, coin, wallets)
        if _is_change(mine, owner[1]):
            entry = {"address": address, "amount_sat": out.value, "path": format_path(mine.path)}
            if mine.wallet != SINGLE:
                entry["wallet"] = mine.wallet
            r.change.append(entry)
            continue
        sent += out.value
        r.spends.append({"address": address, "amount_sat": out.value})
        _warn_spend(r, j, out, mine, owner[1])
    s = view.stream
    s.seek(pos)
    if s.read(1):
        raise BadPsbt("data after the last output")
    keys.clear()

    if total_out > total_in:
        raise Refused("outputs (%d sat) exceed inputs (%d sat)" % (total_out, total_in))
    r.fee_sat = total_in - total_out
    _check_limits(r.fee_sat, sent, total_in, limits or DEFAULT_LIMITS)
    weight += 4 * (8 + len(compact.to_bytes(r.num_inputs)) + len(compact.to_bytes(r.num_outputs)))
    if segwit:
        # marker and flag, and an empty witness for each non-segwit input
        weight += 2 + (r.num_inputs - segwit)
    r.vsize = (weight + 3) // 4
    tenths = (r.fee_sat * 20 + r.vsize) // (2 * r.vsize)
    r.fee_rate_sat_vb = tenths / 10
    _warn(r, foreign, sent, total_in, tenths, any_final_seq)
    return r


def _check_signable(i, inp, kind):
    taproot = kind in ("p2tr", "tr")
    sh = inp.sighash_type
    allowed = (None, SIGHASH_ALL, SIGHASH_DEFAULT) if taproot else (None, SIGHASH_ALL)
    if sh not in allowed:
        raise Refused("input %d: sighash type 0x%02x is not allowed (only ALL)" % (i, sh))
    if not taproot and inp._txhash is None:
        raise Refused(
            "input %d: previous transaction (non_witness_utxo) missing; "
            "required for segwit v0 and legacy inputs" % i
        )


def _is_change(mine, owner):
    # change only back to the wallet every signed input comes from
    return isinstance(mine, OutputMatch) and mine.std and mine.wallet == owner


def _warn_spend(r, j, out, mine, owner):
    w = r.warnings
    spk = out.script_pubkey
    if isinstance(mine, str):
        w.append(mine)
    elif mine is None:
        if spk.data[:1] == b"\x6a":
            if out.value:
                w.append("output %d is an OP_RETURN output: its %d sat are burnt" % (j, out.value))
        elif spk.script_type() is None:
            w.append("output %d pays to a script with no address" % j)
    elif not mine.std:
        text = "output %d pays to this device at an unusual path %s" % (j, format_path(mine.path))
        if mine.wallet != SINGLE:
            text += " of wallet %s" % mine.wallet
        w.append(text)
    elif mine.wallet == SINGLE:
        w.append("output %d pays to this device's single-sig key at %s, not to wallet %s"
                 % (j, format_path(mine.path), owner))
    else:
        w.append("output %d pays to wallet %s, not the wallet the inputs come from" % (j, mine.wallet))


def _pct(tenths):
    return "%d" % (tenths // 10) if tenths % 10 == 0 else "%d.%d" % (tenths // 10, tenths % 10)


def _check_limits(fee, sent, total_in, limits):
    tenths = limits.get("fee_percent_tenths", DEFAULT_LIMITS["fee_percent_tenths"])
    most = limits.get("fee_max_sat", DEFAULT_LIMITS["fee_max_sat"])
    base = sent or total_in  # a self-transfer: the fee against what it moves
    if fee * 1000 > base * tenths:
        raise Refused("fee %d sat is above the device's limit of %s%% of the amount %s"
                      % (fee, _pct(tenths), "sent" if sent else "moved"))
    if fee > most:
        raise Refused("fee %d sat is above the device's limit of %d sat" % (fee, most))


def _check_duplicate(view, seen, i, vin):
    # A small-int tag per prevout keeps the check in a few bytes per input;
    # equal tags are compared in full.
    tag = (int.from_bytes(vin.txid[:4], "little") ^ vin.vout) & 0x3FFFFFFF
    prev = seen.get(tag)
    if prev is None:
        seen[tag] = i
        return
    if not isinstance(prev, list):
        prev = [prev]
        seen[tag] = prev
    for j in prev:
        other = view.tx.vin(j) if view.tx is not None else view.vin(j)
        if other.txid == vin.txid and other.vout == vin.vout:
            raise Refused("input %d spends the same coin as input %d" % (i, j))
    prev.append(i)


def _warn(r, foreign, sent, total_in, tenths, any_final_seq):
    w = r.warnings
    if len(foreign) == 1:
        w.insert(0, "input %d is not signed by this device" % foreign[0])
    elif foreign:
        w.insert(0, "inputs %s are not signed by this device" % _input_list(foreign))
    if r.fee_sat > FEE_ABSURD_SAT:
        w.append("fee of %d sat is above 0.01 BTC" % r.fee_sat)
    base = sent or total_in
    if base and r.fee_sat * 20 > base:
        pct = (r.fee_sat * 1000 + base // 2) // base
        what = "sent" if sent else "moved"
        w.append("fee is %d.%d%% of the amount %s" % (pct // 10, pct % 10, what))
    if tenths < 10:
        w.append("fee rate below 1 sat/vB: the network may not relay it")
    if r.locktime:
        if r.locktime < LOCKTIME_THRESHOLD:
            text = "locktime set: not valid before block %d" % r.locktime
        else:
            text = "locktime set: not valid before unix time %d" % r.locktime
        if any_final_seq:
            text += " (no effect: every input sequence is final)"
        w.append(text)

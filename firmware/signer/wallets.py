"""Registered multisig wallets: the descriptor model and its flash registry.

A wallet is one of the descriptor forms of docs/protocol.md ("Registered
multisig wallets"): wsh/sh-wsh/sh around multi or sortedmulti, or tr with one
multi_a/sortedmulti_a leaf. Every key has an origin and the /<0;1>/* path.

The grammar is parsed here rather than with embit.descriptor: that module
pulls in all of miniscript (too much RAM for the ESP32), never checks the
checksum, ignores derivation steps of non-ranged keys until derive() is
called, and accepts forms that BIP380-390 refuse (more than 15 keys in sh(),
multi_a with threshold 0 or above its key count, mismatched multipaths).
Keys, scripts and hashes still come from embit.

Records are JSON files under ROOT/wallets/, one per wallet, authenticated by
an HMAC whose key is derived from the seed; a record that does not verify is
reported (StorageError) and never used.
"""

import hashlib
import hmac
import os
from binascii import hexlify, unhexlify

from embit import compact, ec
from embit.hashes import hash160, tagged_hash
from embit.misc import secp256k1
from embit.networks import NETWORKS
from embit.script import Script

from . import records
from .desc_checksum import checksum, strip_checksum
from .errors import BadParams, NotReady, StorageError
from .hd import Parent
from .keyexpr import HARDENED, format_path, format_steps, only, parse_step, parse_xpub, split_key
from .secrets import wipe

MAX_KEYS = 15
MAX_NAME = 16
MAX_TEXT = 4096
LEAF_VERSION = 0xC0  # BIP342 tapscript
# BIP341 "nothing up my sleeve" point: no key path spend.
NUMS = unhexlify("50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")
# The registration HMAC key lives at m/0x414d4e54h ("AMNT"), a path no wallet uses.
REGISTRATION_INDEX = HARDENED + 0x414D4E54
_LABEL = b"amanat wallet registration v1"
_MULTIPATH = "/<0;1>/*"
_HEX = "0123456789abcdefABCDEF"
_DIGITS = "0123456789"


# --- small parsing helpers


def check_name(name):
    """`name` if it can name a wallet (the one rule, for every wallet method)."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        raise BadParams("wallet name must be 1 to %d characters" % MAX_NAME)
    for c in name:
        if not " " <= c <= "~":
            raise BadParams("wallet name must be printable ASCII")
    # "Treasury" and "Treasury " would look the same on the screen
    if name[0] == " " or name[-1] == " ":
        raise BadParams("wallet name must not start or end with a space")
    return name


def _int_arg(value, what, limit):
    if value is True or value is False:
        value = int(value)  # CBOR booleans; isinstance(True, int) differs on MicroPython
    if not isinstance(value, int) or not 0 <= value < limit:
        raise BadParams("%s is out of range" % what)
    return value


# --- the model


class Cosigner:
    """One key expression: [fingerprint/origin]xpub/<0;1>/*."""

    def __init__(self, fingerprint, origin, xpub, xpub_text):
        self.fingerprint = fingerprint
        self.origin = origin
        self.xpub = xpub
        self.xpub_text = xpub_text
        self.ours = False
        self._branches = [None, None]  # xpub/0 and xpub/1, derived once

    def label(self, who):
        """"cosigner 3 (fingerprint 1a2b3c4d)" for messages."""
        return "%s (fingerprint %s)" % (who, hexlify(self.fingerprint).decode())

    def path(self):
        """"m/48h/1h/0h/2h": where the xpub sits under its master."""
        return format_path(self.origin)

    def text(self):
        steps = "/" + format_steps(self.origin) if self.origin else ""
        return "[%s%s]%s%s" % (hexlify(self.fingerprint).decode(), steps, self.xpub_text, _MULTIPATH)

    def pubkey(self, change, index):
        branch = self._branches[change]
        if branch is None:
            branch = self._branches[change] = Parent(self.xpub.child(change))
        return branch.key(index)


class Derived:
    """The scripts of one address (change, index) of a wallet."""

    def __init__(self):
        self.script_pubkey = None
        self.redeem_script = None
        self.witness_script = None
        self.leaf_script = None
        self.leaf_version = LEAF_VERSION
        self.leaf_hash = None  # tr: TapLeaf hash, also the merkle root (single leaf)
        self.internal_key = None
        self.control_block = None
        self.pubkeys = []
        self.order = []  # cosigner index of each entry of pubkeys


class Wallet:
    def __init__(self, name, kind, threshold, is_sorted, cosigners, internal, network):
        self.name = name
        self.kind = kind
        self.threshold = threshold
        self.sorted = is_sorted
        self.cosigners = cosigners
        self.internal = internal
        self.network = network
        self.descriptor = _canonical(self)

    def keys(self):
        """(label, Cosigner) of every key expression, the internal key last."""
        out = [("cosigner %d" % (i + 1), c) for i, c in enumerate(self.cosigners)]
        if isinstance(self.internal, Cosigner):
            out.append(("internal key", self.internal))
        return out

    def derive(self, change, index):
        change = _int_arg(change, "change", 2)
        index = _int_arg(index, "index", HARDENED)
        d = Derived()
        pubs = [c.pubkey(change, index) for c in self.cosigners]
        tr = self.kind == "tr"
        sers = [p.xonly() if tr else p.sec() for p in pubs]
        order = list(range(len(pubs)))
        if self.sorted:
            order = sorted(order, key=lambda i: sers[i])
        d.order = order
        d.pubkeys = [pubs[i] for i in order]
        ordered = [sers[i] for i in order]
        if tr:
            _taproot(d, self, change, index, ordered)
            return d
        ms = Script(multisig_script(self.threshold, ordered))
        if self.kind == "sh":
            d.redeem_script = ms
            d.script_pubkey = _p2sh(ms)
            return d
        d.witness_script = ms
        wsh = Script(b"\x00\x20" + hashlib.sha256(ms.data).digest())
        if self.kind == "wsh":
            d.script_pubkey = wsh
        else:
            d.redeem_script = wsh
            d.script_pubkey = _p2sh(wsh)
        return d

    def address(self, change, index):
        return self.derive(change, index).script_pubkey.address(self.network)


def multisig_script(k, secs):
    """OP_k <key>... OP_n OP_CHECKMULTISIG (k, n <= 15: one opcode each)."""
    out = bytearray([0x50 + k])
    for s in secs:
        out.append(len(s))
        out.extend(s)
    out.append(0x50 + len(secs))
    out.append(0xAE)
    return bytes(out)


def multi_a_script(k, xonlys):
    """<key1> OP_CHECKSIG <key2> OP_CHECKSIGADD ... OP_k OP_NUMEQUAL (BIP387)."""
    out = bytearray()
    for i, x in enumerate(xonlys):
        out.append(32)
        out.extend(x)
        out.append(0xBA if i else 0xAC)
    out.append(0x50 + k)
    out.append(0x9C)
    return bytes(out)


def leaf_hash(leaf, version=LEAF_VERSION):
    return tagged_hash("TapLeaf", bytes([version]) + compact.to_bytes(len(leaf)) + leaf)


def taproot_output(internal_xonly, merkle_root):
    """(output x-only key, parity): internal key tweaked by BIP341.

    embit's PublicKey.taproot_tweak drops the parity, which the control
    block needs, so the tweak is done here."""
    tweak = tagged_hash("TapTweak", internal_xonly + merkle_root)
    if not secp256k1.ec_seckey_verify(tweak):
        raise BadParams("taproot tweak out of range")
    point = secp256k1.ec_pubkey_parse(b"\x02" + internal_xonly)
    sec = secp256k1.ec_pubkey_serialize(secp256k1.ec_pubkey_add(point, tweak))
    return sec[1:], sec[0] & 1


def _p2sh(s):
    return Script(b"\xa9\x14" + hash160(s.data) + b"\x87")


def _taproot(d, wallet, change, index, xonlys):
    leaf = multi_a_script(wallet.threshold, xonlys)
    d.leaf_script = Script(leaf)
    d.leaf_hash = leaf_hash(leaf)
    if isinstance(wallet.internal, Cosigner):
        d.internal_key = wallet.internal.pubkey(change, index)
        p = d.internal_key.xonly()
    else:
        p = wallet.internal
        d.internal_key = ec.PublicKey.from_xonly(p)
    q, parity = taproot_output(p, d.leaf_hash)
    d.script_pubkey = Script(b"\x51\x20" + q)
    d.control_block = bytes([LEAF_VERSION | parity]) + p


def _canonical(w):
    func = ("sorted" if w.sorted else "") + ("multi_a" if w.kind == "tr" else "multi")
    inner = "%s(%d,%s)" % (func, w.threshold, ",".join([c.text() for c in w.cosigners]))
    if w.kind == "tr":
        internal = w.internal.text() if isinstance(w.internal, Cosigner) else hexlify(w.internal).decode()
        body = "tr(%s,%s)" % (internal, inner)
    elif w.kind == "sh-wsh":
        body = "sh(wsh(%s))" % inner
    else:
        body = "%s(%s)" % (w.kind, inner)
    return body + "#" + checksum(body)


# --- parsing

_FORMS = (("sh(wsh(", "))", "sh-wsh"), ("wsh(", ")", "wsh"), ("sh(", ")", "sh"), ("tr(", ")", "tr"))
_FUNCS = {"multi": False, "sortedmulti": True, "multi_a": False, "sortedmulti_a": True}
_UNSUPPORTED = "unsupported descriptor form: use wsh(), sh(wsh()), sh() with multi or sortedmulti, or tr() with multi_a or sortedmulti_a"


def parse_wallet(name, text, network):
    """Wallet from descriptor `text`; BadParams naming what is wrong."""
    return _parse(check_name(name), text, network, None)


def parse_wallet_at(text, network):
    """(Wallet, change, index) of a multisig descriptor naming one address:
    every key ends /change/index, the same change (0 or 1) and index
    (display_address). The Wallet is the ranged one (/<0;1>/*), unnamed."""
    at = []
    w = _parse(None, text, network, at)
    if any([a != at[0] for a in at]) or at[0][0] not in (0, 1):
        raise BadParams("every key must be at the same change (0 or 1) and index")
    return w, at[0][0], at[0][1]


def _parse(name, text, network, at):
    if not isinstance(text, str) or not text:
        raise BadParams("descriptor must be text")
    if len(text) > MAX_TEXT:
        raise BadParams("descriptor is too long")
    body = strip_checksum(text)
    kind = inner = None
    for head, tail, k in _FORMS:
        if body.startswith(head) and body.endswith(tail):
            kind, inner = k, body[len(head) : len(body) - len(tail)]
            break
    if kind is None:
        raise BadParams(_UNSUPPORTED)
    internal = None
    if kind == "tr":
        comma = inner.find(",")
        if comma < 0:
            raise BadParams("tr() needs a multi_a or sortedmulti_a leaf (key path only is not a multisig)")
        internal, inner = inner[:comma], inner[comma + 1 :]
        if "(" in internal or "{" in internal:
            raise BadParams(_UNSUPPORTED)
    open_ = inner.find("(")
    func = inner[:open_]
    args = inner[open_ + 1 : -1]
    if (
        open_ < 0
        or not inner.endswith(")")
        or func not in _FUNCS
        or func.endswith("_a") != (kind == "tr")
        or "(" in args
        or ")" in args
    ):
        raise BadParams(_UNSUPPORTED)
    parts = args.split(",")
    if len(parts) - 1 > MAX_KEYS:
        raise BadParams("more than %d keys (%d)" % (MAX_KEYS, len(parts) - 1))
    k = parts[0]
    if not k or len(k) > 2 or not only(k, _DIGITS) or (len(k) > 1 and k[0] == "0"):
        raise BadParams("threshold must be a number")
    cosigners = [_parse_key("cosigner %d" % (i + 1), p, at) for i, p in enumerate(parts[1:])]
    if internal is not None:
        internal = _parse_internal(internal, at)
    w = Wallet(name, kind, int(k), _FUNCS[func], cosigners, internal, network)
    _validate(w, network)
    return w


def _parse_internal(s, at):
    if len(s) == 64 and only(s, _HEX):
        x = unhexlify(s)
        try:
            ec.PublicKey.from_xonly(x)
        except MemoryError:
            raise
        except Exception:
            raise BadParams("internal key is not a valid x-only public key")
        return x
    return _parse_key("internal key", s, at)


def _parse_key(who, s, at):
    """Cosigner of "[fp/origin]xpub/<0;1>/*" (or /**). With `at` a list, the
    key instead ends /change/index, appended to `at` as (change, index)."""
    e = split_key(who, s)
    who = e.who
    if at is not None:
        steps = e.rest.split("/")
        n = [parse_step(x) for x in steps[1:]]
        if len(steps) != 3 or steps[0] or None in n or n[0] >= HARDENED or n[1] >= HARDENED:
            raise BadParams("every key must end with /change/index")
        at.append((n[0], n[1]))
    elif e.rest != _MULTIPATH and e.rest != "/**":  # /** is BIP388's shorthand
        if "h" in e.rest or "'" in e.rest or "H" in e.rest:
            raise BadParams("%s: hardened derivation after the xpub is not allowed" % who)
        raise BadParams("%s: derivation after the xpub must be /<0;1>/* (or /**)" % who)
    return Cosigner(e.fingerprint, e.origin, parse_xpub(who, e.key), e.key)


def _validate(w, network):
    """What makes a wallet well formed, whoever holds its keys."""
    n = len(w.cosigners)
    if n > MAX_KEYS:
        raise BadParams("more than %d keys (%d)" % (MAX_KEYS, n))
    if w.threshold < 1:
        raise BadParams("threshold must be at least 1")
    if w.threshold > n:
        raise BadParams("threshold %d is above the number of keys (%d)" % (w.threshold, n))
    want = network["xpub"]
    seen = []
    for who, c in w.keys():
        if c.xpub.version != want:
            have = "xpub" if c.xpub.version == NETWORKS["main"]["xpub"] else "tpub"
            raise BadParams("%s: key is for another network (%s on %s)" % (c.label(who), have, network["name"]))
        sec = c.xpub.key.sec()
        for other_who, other_sec in seen:
            if sec == other_sec:
                raise BadParams("%s: duplicate key (same as %s)" % (c.label(who), other_who))
        seen.append((who, sec))


# --- policy: which keys are ours


def check_policy(wallet, keystore):
    """Indexes of this device's cosigners (and sets every .ours flag); BadParams
    when the wallet is not one this device can register."""
    if not keystore.loaded:
        raise NotReady("no seed loaded")
    _validate(wallet, keystore.network)
    mine = keystore.fingerprint
    root = keystore.root
    cache = {}
    any_ours = False
    for who, c in wallet.keys():
        c.ours = False
        if c.fingerprint != mine:
            continue
        at = tuple(c.origin)
        node = cache.get(at)
        if node is None:
            node = cache[at] = root.derive(c.origin)
        if node.key.sec() != c.xpub.key.sec() or node.chain_code != c.xpub.chain_code:
            raise BadParams("%s: fingerprint is this device's but the xpub is not" % c.label(who))
        c.ours = any_ours = True
    if not any_ours:
        raise BadParams("none of the keys is this device's")
    # Distinct xpubs do not derive equal children in practice; checking the
    # first address of each chain costs 2n derivations and proves every key derives.
    for change in (0, 1):
        d = wallet.derive(change, 0)
        found = [(wallet.cosigners[i].label("cosigner %d" % (i + 1)), p.sec()) for i, p in zip(d.order, d.pubkeys)]
        if isinstance(wallet.internal, Cosigner):
            found.append((wallet.internal.label("internal key"), d.internal_key.sec()))
        for i in range(len(found)):
            for j in range(i):
                if found[i][1] == found[j][1]:
                    raise BadParams("%s: duplicate key (derives the same key as %s)" % (found[i][0], found[j][0]))
    return [i for i, c in enumerate(wallet.cosigners) if c.ours]


# --- registration HMAC


def registration_key(keystore):
    """32-byte HMAC key for wallet records, from the seed (caller wipes)."""
    if not keystore.loaded:
        raise NotReady("no seed loaded")
    secret = bytearray(keystore.root.child(REGISTRATION_INDEX).key.secret)
    try:
        return bytearray(hmac.new(secret, _LABEL, "sha256").digest())
    finally:
        wipe(secret)


def registration_mac(key, name, descriptor):
    n = name.encode()
    d = descriptor.encode()
    msg = len(n).to_bytes(4, "big") + n + len(d).to_bytes(4, "big") + d
    return hmac.new(key, msg, "sha256").digest()


# --- flash registry


class Listed:
    """Wallets given as (name, descriptor), checked as a registration checks
    them and kept in memory, read as the Registry reads its flash records
    (their HMAC aside): the device's registered wallets for a review or a
    software signing on the host (amanat psbt show, amanat psbt sign)."""

    def __init__(self, wallets, ks):
        self.ks = ks
        self.items = {}
        for name, text in wallets:
            check_policy(parse_wallet(name, text, ks.network), ks)
            self.items[name] = text

    def names(self):
        return sorted(self.items)

    def get(self, name):
        w = parse_wallet(name, self.items[name], self.ks.network)
        for _, c in w.keys():
            c.ours = c.fingerprint == self.ks.fingerprint
        return w


WALLET_VERSION = 1
_WALLET_MIGRATIONS = (lambda rec: rec,)  # 0 -> 1: the same fields, the version added


class Registry:
    """Wallets in flash, one record per wallet (records.py): ROOT/wallets/<hex name>.json."""

    def __init__(self, root, keystore, network):
        self.dir = root.rstrip("/") + "/wallets"
        self.keystore = keystore
        self.network = network
        # No wallet is kept between requests: objects that outlive a request
        # split the heap (a review keeps the wallets it uses, ownership.py).

    def _file(self, name):
        return "%s/%s.json" % (self.dir, hexlify(name.encode()).decode())

    def names(self):
        try:
            files = os.listdir(self.dir)
        except OSError:
            return []
        out = []
        for f in files:
            if not f.endswith(".json"):
                continue
            try:
                out.append(unhexlify(f[:-5]).decode())
            except (ValueError, UnicodeError):
                continue  # not a record of ours
        out.sort()
        return out

    def _record(self, name):
        """(descriptor, mac hex) as stored, unverified; BadParams if missing."""
        path = self._file(name)
        try:
            os.stat(path)
        except OSError:
            raise BadParams("no wallet named %s" % name)
        what = "wallet %s" % name
        rec = records.read(path, what, WALLET_VERSION, _WALLET_MIGRATIONS)
        desc, mac = rec.get("descriptor"), rec.get("mac")
        if rec.get("name") != name or not isinstance(desc, str) or not isinstance(mac, str):
            raise StorageError("wallet %s: record fails its integrity check" % name)
        return desc, mac

    def _load(self, name, desc, mac_hex):
        key = registration_key(self.keystore)
        try:
            want = registration_mac(key, name, desc)
        finally:
            wipe(key)
        try:
            given = unhexlify(mac_hex)
        except ValueError:
            given = b""
        if len(given) != 32 or not hmac.compare_digest(want, given):
            raise StorageError("wallet %s: record fails its integrity check" % name)
        try:
            w = parse_wallet(name, desc, self.network)
        except BadParams as e:
            # authentic, but not readable on this network or by this firmware
            raise StorageError("wallet %s: record cannot be used: %s" % (name, e.message))
        # Registration proved that every key with our fingerprint is ours at
        # its origin, and the HMAC that the record is the one registered.
        mine = self.keystore.fingerprint
        for _, c in w.keys():
            c.ours = c.fingerprint == mine
        return w

    def get(self, name):
        """The wallet registered as `name`, its .ours flags set."""
        desc, mac = self._record(name)
        return self._load(name, desc, mac)

    def all(self):
        return [self.get(n) for n in self.names()]

    def registered_mac(self, wallet):
        """The registration of `wallet` if it is already stored under its name,
        None if the name is free; BadParams if the name holds other keys."""
        try:
            desc, mac = self._record(wallet.name)
        except BadParams:
            return None
        if desc != wallet.descriptor:
            raise BadParams("wallet name %s is already used for other keys" % wallet.name)
        self._load(wallet.name, desc, mac)
        return unhexlify(mac)

    def add(self, wallet):
        """Store `wallet` (already approved); returns its registration HMAC."""
        mac = self.registered_mac(wallet)
        if mac is not None:
            return mac
        key = registration_key(self.keystore)
        try:
            mac = registration_mac(key, wallet.name, wallet.descriptor)
        finally:
            wipe(key)
        try:
            os.mkdir(self.dir)
        except OSError:
            pass  # already there
        records.write(self._file(wallet.name), "wallet %s" % wallet.name, WALLET_VERSION,
                      {"name": wallet.name, "descriptor": wallet.descriptor, "mac": hexlify(mac).decode()})
        return mac

    def erase_all(self):
        """Remove every registered wallet (a wipe: their HMACs are keyed from the seed)."""
        for name in self.names():
            self.delete(name)

    def delete(self, name):
        try:
            os.remove(self._file(name))
        except OSError:
            raise BadParams("no wallet named %s" % name)

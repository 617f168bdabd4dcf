"""BIP32 paths, key expressions and descriptor checksums: the host's one parser of them.

Hardened steps are written `h`, `'` or `H`, by this rule:
- inside a descriptor or key expression (BIP380), `h` or `'`; `H` is refused,
  as BIP380's test vectors require;
- in a BIP32 path a person or HWI types (`--path`, `amanat xpub PATH`,
  signmessage's path), `h`, `H` or `'`.
Whatever was typed, the host writes paths in `h` notation (format_path), and
sends the device no other (normalize_path).

Also the single-key descriptors of `amanat-hwi`: those HWI builds (getkeypool,
displayaddress --path) and those Bitcoin Core sends (displayaddress --desc),
checked before the device is asked anything. policy.py builds multisig
policies on the same key expressions.
"""

import re
from dataclasses import dataclass

from embit import bip32, ec, script
from embit.descriptor.checksum import checksum
from embit.networks import NETWORKS

from .errors import AmanatError

HARDENED = 0x80000000
TYPED_MARKS = ("h", "H", "'")  # hardened marks of a path typed on the command line
DESCRIPTOR_MARKS = ("h", "'")  # BIP380's, inside descriptors and key expressions

# HWI address type name -> (BIP44-style purpose, descriptor template)
ADDR_TYPES = {
    "legacy": (44, "pkh({})"),
    "wit": (84, "wpkh({})"),
    "sh_wit": (49, "sh(wpkh({}))"),
    "tap": (86, "tr({})"),
}

# --chain value -> embit network (testnet4 addresses are testnet addresses)
CHAIN_NETWORK = {"main": "main", "test": "test", "testnet4": "test", "signet": "signet", "regtest": "regtest"}


class DescriptorError(AmanatError, ValueError):
    """A path, key expression or descriptor that is malformed or not of a supported form."""


def coin_type(network: str) -> int:
    """BIP44's coin type: 0 on main, 1 on every test network (`network` is a
    device network or an HWI --chain)."""
    return 0 if network == "main" else 1


# ---------------------------------------------------------------- paths


def parse_path(text: str) -> list[int]:
    """A path as typed, "m/84h/1'/0H/0/5" -> ints. Only absolute paths (starting with m)."""
    parts = text.strip().split("/")
    if parts[0] != "m":
        raise DescriptorError(f"path must start with m/: {text!r}")
    return [_index(p, text, TYPED_MARKS) for p in parts[1:]]


def _index(part: str, whole: str, marks: tuple) -> int:
    hard = part[-1:] in marks
    digits = part[:-1] if hard else part
    if not (digits.isascii() and digits.isdigit()) or int(digits) >= HARDENED:
        raise DescriptorError(f"bad path element {part!r} in {whole!r}")
    return int(digits) + (HARDENED if hard else 0)


def format_path(path, prefix: str = "m") -> str:
    """ints -> "m/84h/1h/0h" (h notation, as Core and HWI print it); prefix "" for "84h/1h/0h"."""
    return "/".join(([prefix] if prefix else []) + [f"{i - HARDENED}h" if i >= HARDENED else str(i) for i in path])


def normalize_path(text: str) -> str:
    """A typed path in the `h` notation the device is sent."""
    return format_path(parse_path(text))


def split_hardened(path: list[int]) -> tuple[list[int], list[int]]:
    """Split after the last hardened step: (where the xpub sits, what follows)."""
    for n in range(len(path), 0, -1):
        if path[n - 1] >= HARDENED:
            return path[:n], path[n:]
    return [], path


# ---------------------------------------------------------------- checksums


def strip_checksum(text: str) -> str:
    """The descriptor without its `#checksum`, which is optional but must be right."""
    body, sep, chk = text.strip().partition("#")
    try:
        good = checksum(body)
    except Exception:
        raise DescriptorError(f"descriptor has characters descriptors cannot hold: {body!r}") from None
    if sep and chk != good:
        raise DescriptorError(f"descriptor checksum {chk!r} is wrong (expected {good!r})")
    return body


def with_checksum(desc: str) -> str:
    return desc + "#" + checksum(desc)


# ---------------------------------------------------------------- key expressions


@dataclass(frozen=True)
class Key:
    """One key expression: `[fp/origin]xpub/steps/<a;b>/*` or `[fp/origin]hexkey`."""

    fingerprint: bytes | None
    origin: tuple  # path ints from the master key
    key: str  # an extended public key as written, or hex (lower case)
    steps: tuple = ()  # unhardened steps after an xpub
    multipath: tuple | None = None  # (receive, change) branches
    wildcard: bool = False

    @property
    def is_extended(self) -> bool:
        return not _is_hex(self.key)

    @property
    def path(self) -> str:
        return format_path(self.origin)

    def text(self) -> str:
        origin = ""
        if self.fingerprint is not None:
            steps = format_path(self.origin, "")
            origin = f"[{self.fingerprint.hex()}{'/' + steps if steps else ''}]"
        tail = "".join(f"/{i}" for i in self.steps)
        if self.multipath:
            tail += "/<%d;%d>" % self.multipath
        return origin + self.key + tail + ("/*" if self.wildcard else "")

    def pubkey(self, index: int | None = None, branch: int = 0) -> ec.PublicKey:
        """The key, derived at `index` (a ranged key) on `branch` of its multipath."""
        if not self.is_extended:
            raw = bytes.fromhex(self.key)
            return ec.PublicKey.from_xonly(raw) if len(raw) == 32 else ec.PublicKey.parse(raw)
        path = list(self.steps)
        if self.multipath:
            path.append(self.multipath[branch])
        if self.wildcard:
            if index is None:
                raise DescriptorError(f"key {self.text()} is ranged: an index is needed")
            path.append(index)
        return bip32.HDKey.from_string(self.key).derive(path).key


_ORIGIN = re.compile(r"\[([0-9a-fA-F]{8})((?:/[^/\[\]]*)*)\]")  # its steps are checked by _index
_SUFFIX = re.compile(r"((?:/[0-9]+)*)(?:/<([0-9]+);([0-9]+)>)?(/\*)?")


def parse_key(text: str) -> Key:
    """One key expression: an optional origin, a compressed or x-only hex key
    or an extended public key, and after an extended key unhardened steps, a
    `/<a;b>` multipath and a `/*` wildcard (`/**`, BIP388's, is `/<0;1>/*`)."""
    t = text.strip()
    fp, origin = None, ()
    m = _ORIGIN.match(t)
    if m:
        fp = bytes.fromhex(m.group(1))
        origin = tuple(_index(p, text, DESCRIPTOR_MARKS) for p in m.group(2).split("/")[1:])
        t = t[m.end() :]
    elif t.startswith("["):
        raise DescriptorError(f"bad key origin in {text!r} (expected [8 hex digits/path])")
    body, slash, suffix = t.partition("/")
    suffix = slash + suffix
    if _is_hex(body):
        if suffix or len(body) not in (64, 66) or (len(body) == 66 and body[:2] not in ("02", "03")):
            raise DescriptorError(f"{text!r} is not a compressed or x-only public key")
        return Key(fp, origin, body.lower())
    try:
        extended_key(body)
    except DescriptorError as e:
        raise DescriptorError(f"{e.message}: {text!r}") from None
    if suffix == "/**":
        suffix = "/<0;1>/*"
    if re.search(r"[hH']", suffix):
        raise DescriptorError(f"hardened derivation after an xpub is impossible: {text!r}")
    s = _SUFFIX.fullmatch(suffix)
    if not s:
        raise DescriptorError(f"unsupported derivation {suffix!r} after the xpub (use /<0;1>/* or /**)")
    steps = tuple(int(i) for i in s.group(1).split("/")[1:])
    multipath = (int(s.group(2)), int(s.group(3))) if s.group(2) else None
    if any(i >= HARDENED for i in steps + (multipath or ())):
        raise DescriptorError(f"derivation index out of range in {text!r}")
    return Key(fp, origin, body, steps, multipath, bool(s.group(4)))


def extended_key(text: str) -> bip32.HDKey:
    """An extended public key (any version: policy.py converts SLIP-132 ones)."""
    try:
        k = bip32.HDKey.from_string(text)
    except Exception:
        raise DescriptorError("not a valid extended public key") from None
    if k.is_private:
        raise DescriptorError("a private key; give the extended public key")
    return k


def _is_hex(s: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F]+", s))


# ---------------------------------------------------------------- single-key descriptors


def account_descriptor(addr_type: str, key: Key) -> str:
    """The descriptor of one HWI address type around a key expression, with checksum."""
    return with_checksum(ADDR_TYPES[addr_type][1].format(key.text()))


@dataclass
class SingleKey:
    """A parsed pkh/sh(wpkh)/wpkh/tr descriptor naming exactly one key."""

    addr_type: str  # "legacy", "sh_wit", "wit", "tap"
    key: Key  # no multipath, no wildcard; an xpub is an xpub or tpub


_WRAPPERS = (("sh(wpkh(", "))", "sh_wit"), ("wpkh(", ")", "wit"), ("pkh(", ")", "legacy"), ("tr(", ")", "tap"))


def parse_single_key(desc: str) -> SingleKey:
    """Parse and check a single-key descriptor as Core's walletdisplayaddress
    sends it. A checksum, if present, must be right."""
    body = strip_checksum(desc)
    for head, tail, addr_type in _WRAPPERS:
        if body.startswith(head) and body.endswith(tail):
            inner = body[len(head) : -len(tail)]
            break
    else:
        raise DescriptorError(f"only pkh, sh(wpkh), wpkh and tr descriptors with one key are supported: {desc}")
    key = parse_key(inner)
    if key.multipath or key.wildcard or (key.is_extended and key.key[:4] not in ("xpub", "tpub")):
        raise DescriptorError(f"descriptor must hold one key (hex, xpub or tpub) and no wildcard: {desc}")
    if not key.is_extended and len(key.key) != (64 if addr_type == "tap" else 66):
        raise DescriptorError(f"wrong public key length for {addr_type}: {desc}")
    try:
        key.pubkey()
    except Exception:
        raise DescriptorError(f"descriptor key does not parse: {desc}") from None
    return SingleKey(addr_type, key)


def address_of(addr_type: str, pub: ec.PublicKey, chain: str) -> str:
    """The address Bitcoin Core shows for this key and type on --chain."""
    net = NETWORKS[CHAIN_NETWORK[chain]]
    if addr_type == "legacy":
        return script.p2pkh(pub).address(net)
    if addr_type == "wit":
        return script.p2wpkh(pub).address(net)
    if addr_type == "sh_wit":
        return script.p2sh(script.p2wpkh(pub)).address(net)
    if addr_type == "tap":
        return script.p2tr(pub).address(net)
    raise DescriptorError(f"unknown address type {addr_type}")

"""Host-side helpers for BIP32 paths and single-key output descriptors.

Used by `amanat-hwi` to build the descriptors HWI builds (getkeypool,
displayaddress --path) and to check the ones Bitcoin Core sends
(displayaddress --desc) before the device is asked anything.
"""

import re
from dataclasses import dataclass

from embit import bip32, ec, script
from embit.descriptor.checksum import checksum
from embit.networks import NETWORKS

HARDENED = 0x80000000

# HWI address type name -> (BIP44-style purpose, descriptor template)
ADDR_TYPES = {
    "legacy": (44, "pkh({})"),
    "wit": (84, "wpkh({})"),
    "sh_wit": (49, "sh(wpkh({}))"),
    "tap": (86, "tr({})"),
}

# --chain value -> embit network (testnet4 addresses are testnet addresses)
CHAIN_NETWORK = {"main": "main", "test": "test", "testnet4": "test", "signet": "signet", "regtest": "regtest"}


class DescriptorError(ValueError):
    """A path or descriptor that is malformed or not a single-key one."""


def parse_path(text: str) -> list[int]:
    """"m/84h/1'/0H/0/5" -> ints. Only absolute paths (starting with m)."""
    parts = text.strip().split("/")
    if parts[0] != "m":
        raise DescriptorError(f"path must start with m/: {text!r}")
    return [_index(p, text) for p in parts[1:]]


def _index(part: str, whole: str) -> int:
    hard = part[-1:] in ("h", "H", "'")
    digits = part[:-1] if hard else part
    if not digits.isdigit() or int(digits) >= HARDENED:
        raise DescriptorError(f"bad path element {part!r} in {whole!r}")
    return int(digits) + (HARDENED if hard else 0)


def format_path(path: list[int], prefix: str = "m") -> str:
    """ints -> "m/84h/1h/0h" (h notation, as Core and HWI print it)."""
    return "/".join([prefix] + [_fmt(i) for i in path]) if prefix else "/".join(_fmt(i) for i in path)


def _fmt(i: int) -> str:
    return f"{i - HARDENED}h" if i >= HARDENED else str(i)


def split_hardened(path: list[int]) -> tuple[list[int], list[int]]:
    """Split after the last hardened step: (where the xpub sits, what follows)."""
    for n in range(len(path), 0, -1):
        if path[n - 1] >= HARDENED:
            return path[:n], path[n:]
    return [], path


def with_checksum(desc: str) -> str:
    return desc + "#" + checksum(desc)


def origin_key(fingerprint: bytes, origin: list[int], key: str, suffix: str = "") -> str:
    """"[fp/84h/1h/0h]tpub.../0/*" """
    steps = format_path(origin, prefix="")
    return f"[{fingerprint.hex()}{'/' + steps if steps else ''}]{key}{suffix}"


def account_descriptor(addr_type: str, key_expr: str) -> str:
    """The descriptor of one HWI address type around a key expression, with checksum."""
    return with_checksum(ADDR_TYPES[addr_type][1].format(key_expr))


@dataclass
class SingleKey:
    """A parsed pkh/sh(wpkh)/wpkh/tr descriptor naming exactly one key."""

    addr_type: str  # "legacy", "sh_wit", "wit", "tap"
    fingerprint: bytes | None
    origin: list[int]  # path from the master key to `key`
    key: str  # hex pubkey, x-only hex (tr) or xpub/tpub
    suffix: list[int]  # unhardened steps after an xpub

    @property
    def full_path(self) -> list[int]:
        return self.origin + self.suffix

    def pubkey(self) -> ec.PublicKey:
        if self.key[:4] in ("xpub", "tpub"):
            return bip32.HDKey.from_string(self.key).derive(self.suffix).key
        raw = bytes.fromhex(self.key)
        return ec.PublicKey.from_xonly(raw) if len(raw) == 32 else ec.PublicKey.parse(raw)


_WRAPPERS = (("sh(wpkh(", "))", "sh_wit"), ("wpkh(", ")", "wit"), ("pkh(", ")", "legacy"), ("tr(", ")", "tap"))
_KEY = re.compile(r"^(?:\[([0-9a-fA-F]{8})((?:/[0-9]+[hH']?)*)\])?([0-9a-fA-F]+|[xt]pub[1-9A-HJ-NP-Za-km-z]+)((?:/[0-9]+)*)$")


def parse_single_key(desc: str) -> SingleKey:
    """Parse and check a single-key descriptor as Core's walletdisplayaddress sends it.

    A checksum, if present, must be right; `h`, `H` and `'` are all accepted.
    """
    body, sep, chk = desc.strip().partition("#")
    if sep:
        try:
            good = checksum(body)
        except Exception:
            raise DescriptorError(f"descriptor has invalid characters: {desc}") from None
        if chk != good:
            raise DescriptorError(f"descriptor checksum {chk!r} is wrong (expected {good!r}): {desc}")
    for head, tail, addr_type in _WRAPPERS:
        if body.startswith(head) and body.endswith(tail):
            inner = body[len(head) : -len(tail)]
            break
    else:
        raise DescriptorError(f"only pkh, sh(wpkh), wpkh and tr descriptors with one key are supported: {desc}")
    m = _KEY.match(inner)
    if not m:
        raise DescriptorError(f"descriptor must hold one key with origin and no wildcard: {desc}")
    fp, origin, key, suffix = m.groups()
    is_xpub = key[:4] in ("xpub", "tpub")
    if suffix and not is_xpub:
        raise DescriptorError(f"derivation steps after a plain public key: {desc}")
    if not is_xpub and len(key) != (64 if addr_type == "tap" else 66):
        raise DescriptorError(f"wrong public key length for {addr_type}: {desc}")
    sk = SingleKey(
        addr_type,
        bytes.fromhex(fp) if fp else None,
        parse_path("m" + origin) if origin else [],
        key,
        parse_path("m" + suffix) if suffix else [],
    )
    try:
        sk.pubkey()
    except Exception:
        raise DescriptorError(f"descriptor key does not parse: {desc}") from None
    return sk


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

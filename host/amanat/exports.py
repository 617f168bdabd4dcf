"""Files for the coordinators' tools: this device's cosigner key, and a
registered wallet as a watch-only wallet, each carrying the key origins
(master fingerprint and path) so that the PSBTs those tools make name this
device's keys, and the device can sign them.

Cosigner key: Coldcard's generic multisig export (JSON, read by Sparrow and
Specter) and key-origin descriptors. Wallet: a descriptor (BIP 389
multipath, and the receive and change pair), a BIP-129 descriptor record
(BSMS, no encryption), a Coldcard/Sparrow multisig text file, or an Electrum
wallet file.
"""

import json

from embit import bip32
from embit.networks import NETWORKS

from .descriptors import HARDENED, coin_type, format_path, with_checksum
from .policy import PolicyError, parse

# The BIP48 script types (m/48h/coin/account/type) and the Coldcard export's names for them.
COSIGNER_PATHS = (("p2sh", None), ("p2sh_p2wsh", 1), ("p2wsh", 2))


class ExportError(PolicyError):
    """A wallet the chosen format cannot express (the message says why)."""


def cosigner_paths(network: str, account: int) -> dict:
    """{script type: path} of the keys a cosigner gives a coordinator."""
    coin = coin_type(network)
    out = {}
    for name, script_type in COSIGNER_PATHS:
        path = [45 + HARDENED] if script_type is None else [48 + HARDENED, coin + HARDENED, account + HARDENED,
                                                            script_type + HARDENED]
        out[name] = format_path(path)
    return out


def cosigner_json(fingerprint: bytes, network: str, account: int, xpubs: dict) -> str:
    """Coldcard's generic multisig key export: {"xfp", "account", "<type>_deriv",
    "<type>"} for p2sh, p2sh_p2wsh and p2wsh. `xpubs` maps each path of
    cosigner_paths() to its xpub (from the device)."""
    out = {"xfp": fingerprint.hex().upper(), "account": account}
    for name, path in cosigner_paths(network, account).items():
        out[name + "_deriv"] = path.replace("h", "'")
        out[name] = xpubs[path]
    return json.dumps(out, indent=2) + "\n"


def key_origin(fingerprint: bytes, path: str, xpub: str) -> str:
    """`[fingerprint/path]xpub`, as descriptors and BIP388 policies take a key."""
    return f"[{fingerprint.hex()}/{path[2:]}]{xpub}"


def cosigner_descriptors(fingerprint: bytes, network: str, account: int, xpubs: dict) -> str:
    """One key-origin expression per script type, one per line, named."""
    return "".join(f"{name}: {key_origin(fingerprint, path, xpubs[path])}\n"
                   for name, path in cosigner_paths(network, account).items())


# ---------------------------------------------------------------- wallets


def _multipath(descriptor: str):
    ms = parse(descriptor)
    if not all(k.multipath == (0, 1) and k.wildcard and not k.steps for k in ms.all_keys() if k.is_extended):
        raise ExportError("only wallets whose keys all end /<0;1>/* can be exported")
    return ms


def _branch(descriptor: str, branch: int) -> str:
    return with_checksum(descriptor.split("#")[0].replace("/<0;1>/*", f"/{branch}/*"))


def descriptor_file(descriptor: str) -> str:
    """The multipath descriptor, then the receive and change descriptors."""
    _multipath(descriptor)
    return "".join(line + "\n" for line in (with_checksum(descriptor.split("#")[0]), _branch(descriptor, 0),
                                           _branch(descriptor, 1)))


def bsms(descriptor: str, network: str) -> str:
    """BIP-129's descriptor record (NO_ENCRYPTION): the template with `/**`,
    the path restrictions, and the wallet's first address, for every signer
    to check before it registers the wallet."""
    ms = _multipath(descriptor)
    template = descriptor.split("#")[0].replace("/<0;1>/*", "/**")
    return f"BSMS 1.0\n{template}\n/0/*,/1/*\n{ms.address(network, 0)}\n"


def multisig_text(name: str, descriptor: str) -> str:
    """The Coldcard/Sparrow multisig file (Name, Policy, Format, a Derivation
    line before each key): sorted multisig only."""
    ms = _multipath(descriptor)
    if ms.func != "sortedmulti" or ms.form == "tr":
        raise ExportError("the Coldcard/Sparrow multisig file holds sortedmulti wallets only (P2WSH, "
                          "P2SH-P2WSH, P2SH); export a descriptor instead")
    form = {"wsh": "P2WSH", "sh-wsh": "P2SH-P2WSH", "sh": "P2SH"}[ms.form]
    lines = [f"# {name}: exported for Sparrow, Coldcard and Specter (watch-only)", f"Name: {name}",
             f"Policy: {ms.threshold} of {len(ms.keys)}", f"Format: {form}", ""]
    for k in ms.keys:
        lines += [f"Derivation: {format_path(k.origin).replace('h', chr(39))}", f"{k.fingerprint.hex().upper()}: {k.key}",
                  ""]
    return "\n".join(lines)


# Electrum names a multisig script type by the SLIP-132 version of its keys.
_ELECTRUM_VERSIONS = {"wsh": "Zpub", "sh-wsh": "Ypub", "sh": "xpub"}


def electrum_wallet(name: str, descriptor: str, network: str) -> str:
    """An Electrum watch-only multisig wallet file: one bip32 keystore per
    cosigner with its root fingerprint and derivation, so that its PSBTs
    carry every key's origin."""
    ms = _multipath(descriptor)
    if ms.func != "sortedmulti" or ms.form == "tr":
        raise ExportError("Electrum holds sortedmulti wallets only (P2WSH, P2SH-P2WSH, P2SH)")
    version = NETWORKS[network][_ELECTRUM_VERSIONS[ms.form]]
    # seed_version 20: the first layout whose keystores keep "root_fingerprint"
    # (Electrum upgrades it on open; from an older version it would drop it).
    out = {"wallet_type": f"{ms.threshold}of{len(ms.keys)}", "use_encryption": False, "seed_version": 20}
    for n, k in enumerate(ms.keys, 1):
        hd = bip32.HDKey.from_string(k.key)
        hd.version = version
        out[f"x{n}/"] = {"type": "bip32", "xpub": hd.to_base58(), "xprv": None,
                         "derivation": format_path(k.origin).replace("h", "'"),
                         "root_fingerprint": k.fingerprint.hex(), "label": f"{name} cosigner {n}"}
    return json.dumps(out, indent=2) + "\n"


FORMATS = ("descriptor", "bsms", "sparrow", "electrum")


def wallet_file(fmt: str, name: str, descriptor: str, network: str) -> str:
    if fmt == "descriptor":
        return descriptor_file(descriptor)
    if fmt == "bsms":
        return bsms(descriptor, network)
    if fmt == "sparrow":
        return multisig_text(name, descriptor)
    if fmt == "electrum":
        return electrum_wallet(name, descriptor, network)
    raise ExportError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")

"""The device's review of a PSBT, computed on the host (`amanat psbt show`).

The review is the firmware's own code (review.py, and the screens of
handlers.review_screens) run on the MicroPython VM by amanat.inprocess, with
the device's public side in place of its seed: its fingerprint, network,
registered wallets, fee limits and the account xpubs at every path with its
fingerprint that the PSBT or a wallet names. Those come from a connected
device (from_device: read-only requests, nothing to approve) or, offline, from
key expressions and wallet files (from_keys), in which case the fee limits are
the device's defaults. A preview, not an approval: what the officer approves
is what the device itself shows.
"""

from dataclasses import dataclass, field

from embit import bip32
from embit.networks import NETWORKS

from . import inprocess, policy
from .descriptors import DescriptorError, format_path, parse_key
from .errors import AmanatError, PsbtError
from .psbt_raw import parse_psbt

HARDENED = 0x80000000


class PreviewError(AmanatError):
    """The review cannot be computed: a key or a wallet is missing or does not fit."""


@dataclass
class Device:
    """A device's public side, as the review needs it."""

    fingerprint: str  # hex
    network: str
    keys: dict = field(default_factory=dict)  # path ("m/84h/1h/0h") -> xpub
    wallets: list = field(default_factory=list)  # [(name, descriptor)]
    limits: dict | None = None  # None: the device's defaults
    source: str = ""  # where this came from, for the officer
    anti_exfil: bool = True  # whether it signs ECDSA in anti-exfil's rounds (amanat sign asks when it can)


def account(path) -> tuple:
    """The hardened prefix of a path: where the device's KeyCache derives from."""
    n = len(path)
    while n and path[n - 1] < HARDENED:
        n -= 1
    return tuple(path[:n])


def psbt_accounts(raw: bytes, fingerprint: bytes) -> set:
    """Hardened prefixes of every derivation with `fingerprint`, in inputs and
    outputs. A PSBT the host cannot parse names none: the device's code then
    says what is wrong with it."""
    try:
        psbt = parse_psbt(raw)
    except PsbtError:
        return set()
    out = set()
    for scope in list(psbt.inputs) + list(psbt.outputs):
        ders = list(scope.bip32_derivations.values())
        ders += [der for _, der in scope.taproot_bip32_derivations.values()]
        out.update(account(d.derivation) for d in ders if d.fingerprint == fingerprint)
    return out


def _wallet_keys(wallets, fingerprint: bytes) -> list:
    """The key expressions with `fingerprint` in the wallets' descriptors."""
    out = []
    for name, desc in wallets:
        try:
            ms = policy.parse(desc)
        except policy.PolicyError as e:
            raise PreviewError(f"wallet {name}: {e.message}") from None
        out += [k for k in ms.all_keys() if k.fingerprint == fingerprint and k.is_extended]
    return out


def from_device(client, raw: bytes) -> Device:
    """What the connected device would review with: read, never changed."""
    info = client.info()
    if info.get("locked") or not info.get("fingerprint"):
        raise PreviewError("the device is locked: unlock it, or give its keys with --key")
    fp = info["fingerprint"]
    fp = bytes(fp) if not isinstance(fp, str) else bytes.fromhex(fp)
    wallets = []
    for w in client.list_wallets():
        if "descriptor" in w:  # a record the device cannot use is not used in its review either
            wallets.append((w["name"], w["descriptor"]))
    paths = psbt_accounts(raw, fp) | {k.origin for k in _wallet_keys(wallets, fp)}
    keys = {format_path(p): client.get_xpub(format_path(p)) for p in sorted(paths)}
    return Device(fp.hex(), info["network"], keys, wallets, client.get_limits(), "the connected device",
                  client.anti_exfil)


def _network_of(xpub: str, network: str | None) -> str:
    version = bip32.HDKey.from_string(xpub).version
    mainnet = version == NETWORKS["main"]["xpub"]
    if network is None:
        return "main" if mainnet else "test"
    if mainnet != (network == "main"):
        raise PreviewError(f"{xpub[:4]}... is a key of another network than {network}")
    return network


def from_keys(keys: list[str], wallets: list, network: str | None = None, fingerprint: str | None = None) -> Device:
    """A device described by `[fingerprint/path]xpub` key expressions (its
    account keys, all with one fingerprint) and the wallets registered on it
    [(name, descriptor)]: their keys with that fingerprint are its keys too.
    `fingerprint` (hex) names the device when no key is given."""
    parsed = []
    for text in keys:
        try:
            k = parse_key(text)
        except DescriptorError as e:
            raise PreviewError(f"--key: {e.message}") from None
        if k.fingerprint is None or not k.is_extended or k.steps or k.multipath or k.wildcard:
            raise PreviewError(f"--key {text}: give an account key as [fingerprint/path]xpub")
        parsed.append(k)
    fps = {k.fingerprint for k in parsed}
    if fingerprint is not None:
        try:
            fps.add(bytes.fromhex(fingerprint))
        except ValueError:
            raise PreviewError(f"--fingerprint {fingerprint}: not 8 hex digits") from None
    if not fps:
        raise PreviewError("name the device: its account keys with --key [fingerprint/path]xpub, "
                           "its --fingerprint, or connect it")
    if len(fps) > 1 or len(next(iter(fps))) != 4:
        raise PreviewError("--key and --fingerprint name different devices; one device at a time")
    fp = fps.pop()
    found = {}
    for k in parsed + _wallet_keys(wallets, fp):
        network = _network_of(k.key, network)
        path = format_path(k.origin)
        if found.setdefault(path, k.key) != k.key:
            raise PreviewError(f"two different keys are given for {fp.hex()} at {path}")
    return Device(fp.hex(), network or "main", found, list(wallets), None, "the keys given")


def review(raw: bytes, device: Device) -> dict:
    """{"review", "screens"} as the device computes them for `amanat sign`
    (with anti-exfil's rounds when the device has them and the PSBT asks it
    for an ECDSA signature); DeviceCodeError when it would refuse."""
    from . import anti_exfil
    from .psbt_raw import parse_maps

    rounds = False
    if device.anti_exfil:
        try:
            rounds = bool(anti_exfil.wanted(parse_maps(raw), bytes.fromhex(device.fingerprint)))
        except Exception:
            pass  # the device says what is wrong with it
    try:
        return inprocess.show(raw, device.fingerprint, device.keys, device.network, device.wallets, device.limits,
                              anti_exfil=rounds)
    except inprocess.DeviceCodeError as e:
        if e.name == "NO_KEY":
            raise PreviewError(f"{e.message} of {device.fingerprint}: give it with --key "
                               f"[{device.fingerprint}/...]xpub, or connect the device") from None
        raise

"""`amanat-hwi`: the HWI command line for Amanat devices.

Bitcoin Core runs it as `-signer=amanat-hwi`; other wallets that drive an
`hwi` binary can too. Flags, commands, JSON answers, error codes and exit
statuses follow HWI (hwilib/_cli.py, commands.py, errors.py): one JSON line
on stdout, errors as {"error", "code"} with exit status 0, and only usage
errors exit 2 (code -2).
"""

import argparse
import base64
import io
import json
import logging
import os
import re
import shlex
import sys

from . import __version__
from .descriptors import (
    ADDR_TYPES,
    CHAIN_NETWORK,
    HARDENED,
    DescriptorError,
    Key,
    account_descriptor,
    address_of,
    coin_type,
    format_path,
    parse_path,
    parse_single_key,
    split_hardened,
    with_checksum,
)

log = logging.getLogger("amanat.hwi")

# HWI's error codes (hwilib/errors.py)
NO_DEVICE_TYPE = -1
MISSING_ARGUMENTS = -2
DEVICE_CONN_ERROR = -3
UNKNOWN_DEVICE_TYPE = -4
INVALID_TX = -5
BAD_ARGUMENT = -7
NOT_IMPLEMENTED = -8
UNAVAILABLE_ACTION = -9
DEVICE_NOT_READY = -12
UNKNOWN_ERROR = -13
ACTION_CANCELED = -14
DEVICE_BUSY = -15
HELP_TEXT = -17
DEVICE_NOT_INITIALIZED = -18

# device error name (docs/protocol.md) -> HWI code; anything else is UNKNOWN_ERROR
DEVICE_CODES = {
    "REJECTED": ACTION_CANCELED,
    "BUSY": DEVICE_BUSY,
    "NOT_READY": DEVICE_NOT_READY,
    "BAD_PARAMS": BAD_ARGUMENT,
    "REFUSED": BAD_ARGUMENT,
    "BAD_PSBT": INVALID_TX,
    "UNKNOWN_METHOD": NOT_IMPLEMENTED,
}

DEVICE_TYPE = "amanat"
CHAINS = ["main", "test", "regtest", "signet", "testnet4"]
# the device's network (`info`) -> the --chain values it answers. Testnet and
# signet share keys (tpub, coin type 1) and addresses (tb1): a device set up
# for either answers both. Regtest's bcrt1 and mainnet stay their own.
DEVICE_CHAINS = {"main": ("main",), "test": ("test", "testnet4", "signet"), "signet": ("test", "testnet4", "signet"),
                 "regtest": ("regtest",)}
EMULATORS_ENV = "AMANAT_HWI_EMULATORS"
FINGERPRINT_ENV = "AMANAT_HWI_FINGERPRINT"  # expose only this device (Bitcoin Core takes exactly one)
STATE_ENV = "AMANAT_HWI_STATE"  # expose only the emulator running on this state folder
PROBE_TIMEOUT = 2.0  # enumerate and the fingerprint search must stay quick

EPILOG = f"""\
Device selection: --fingerprint, --device-path, or --device-type amanat when
exactly one device is connected. Emulators are considered only with
--emulators, or when the environment variable {EMULATORS_ENV}=1 is set
(Bitcoin Core's -signer calls pass only --fingerprint and --chain).
One device for Bitcoin Core (which refuses several): --only FINGERPRINT or
{FINGERPRINT_ENV}=FINGERPRINT lists and uses that device alone; --state DIR
or {STATE_ENV}=DIR the emulator running on DIR alone. A device busy with
another program is listed with what is known of it, and its commands answer
DEVICE_BUSY (-15).
PIN and passphrase are entered on the device: -p/--password and --stdinpass
take only an empty passphrase. Setup, restore, backup, wipe and PIN commands
are done on the device and answer -9 (not available). Errors print
{{"error": ..., "code": ...}} and exit 0, as HWI.
"""


class HWIError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.message = message
        self.code = code


# ---------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    """HWI's parser: usage errors and help still print one JSON line."""

    def print_usage(self, file=None):
        super().print_usage(file or sys.stderr)

    def print_help(self, file=None):
        super().print_help(file or sys.stderr)
        print(json.dumps({"error": "Help text requested", "code": HELP_TEXT}))

    def error(self, message):
        self.print_usage(sys.stderr)
        print(json.dumps({"error": f"{self.prog}: error: {message}", "code": MISSING_ARGUMENTS}))
        self.exit(2)


def get_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="amanat-hwi",
        description="HWI-compatible interface to Amanat signing devices. Answers are one line of JSON.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device-path", "-d", help="serial port of the device (as listed by enumerate)")
    p.add_argument("--device-type", "-t", help=f"device type: only '{DEVICE_TYPE}'")
    p.add_argument("--password", "-p", help="only empty: the passphrase is entered on the device")
    p.add_argument("--stdinpass", action="store_true", help="refused: the passphrase is entered on the device")
    p.add_argument("--chain", choices=CHAINS, default="main", help="chain to work with (default: main)")
    p.add_argument("--debug", action="store_true", help="print debug messages on stderr")
    p.add_argument("--fingerprint", "-f", help="master key fingerprint (8 hex digits) of the device to use")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--stdin", action="store_true", help="read the command and its arguments from stdin")
    p.add_argument("--interactive", "-i", action="store_true", help="accepted for HWI compatibility")
    p.add_argument("--expert", action="store_true", help="more detail from some commands (getxpub)")
    p.add_argument("--emulators", action="store_true", dest="allow_emulators",
                   help=f"also use running emulators (or set {EMULATORS_ENV}=1)")
    p.add_argument("--only", metavar="FINGERPRINT",
                   help=f"list and use only the device with this fingerprint (or set {FINGERPRINT_ENV})")
    p.add_argument("--state", metavar="DIR",
                   help=f"list and use only the emulator running on this state folder (or set {STATE_ENV})")

    sub = p.add_subparsers(dest="command", description="Commands")
    sub.required = True
    addr_type = dict(choices=list(ADDR_TYPES), default="wit")

    sub.add_parser("enumerate", help="list connected devices")

    c = sub.add_parser("getmasterxpub", help="xpub of the BIP44/49/84/86 account")
    c.add_argument("--addr-type", **addr_type, help="account type: legacy (BIP44), sh_wit (49), wit (84), tap (86)")
    c.add_argument("--account", type=int, default=0, help="account number (default 0)")

    c = sub.add_parser("signtx", help="sign a PSBT (base64)")
    c.add_argument("psbt", help="the PSBT, base64; unchanged with signed false if no input is this device's")
    c.add_argument("--registration", help="what registerdescriptor returned, checked before signing")
    c.add_argument("--no-anti-exfil", dest="no_anti_exfil", action="store_true",
                   help="sign in one round, without checking the device's ECDSA nonces (not recommended)")

    c = sub.add_parser("getxpub", help="xpub at a BIP32 path")
    c.add_argument("path", help="BIP32 path, e.g. m/84h/1h/0h (h, H or ' for hardened)")

    c = sub.add_parser("signmessage", help="sign a message (BIP137; segwit headers at BIP49/84 paths)")
    c.add_argument("message", help="the message, as text")
    c.add_argument("path", help="BIP32 path of the signing key, e.g. m/84h/0h/0h/0/0")
    c.add_argument("--bip322", action="store_true",
                   help="a BIP-322 simple signature instead (BIP84 and BIP86 addresses: m/84h|86h/coin'/account'/"
                        "change/index), signed on the device as a proof of that address")

    c = sub.add_parser("getkeypool", help="descriptors for Core's importdescriptors/importmulti")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--keypool", action="store_true", dest="keypool", default=True,
                   help="mark the entries for the keypool (default)")
    g.add_argument("--nokeypool", action="store_false", dest="keypool", default=False,
                   help="do not mark the entries for the keypool")
    c.add_argument("--internal", action="store_true", help="the change chain instead of receive")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--addr-type", **addr_type, help="account type: legacy, sh_wit, wit (default) or tap")
    g.add_argument("--all", action="store_true", help="every account type, receive and change")
    c.add_argument("--account", type=int, default=0, help="account number (default 0)")
    c.add_argument("--path", help="a path ending /*, e.g. m/84h/1h/0h/1/*")
    c.add_argument("start", type=int, help="first address index")
    c.add_argument("end", type=int, help="last address index")

    c = sub.add_parser("getdescriptors", help="receive and change descriptors of an account")
    c.add_argument("--account", type=int, default=0, help="account number (default 0)")

    c = sub.add_parser("displayaddress", help="show an address on the device")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--desc", help="descriptor of one address (single key, or a registered multisig)")
    g.add_argument("--path", help="path of one address, e.g. m/84h/1h/0h/0/0 (with --addr-type)")
    g.add_argument("--registration", help="what registerdescriptor returned (a registered wallet)")
    c.add_argument("--addr-type", **addr_type, help="address type with --path: legacy, sh_wit, wit or tap")
    c.add_argument("--index", type=int, help="address index (with --registration)")
    c.add_argument("--multipath-index", type=int, default=0, help="0 receive, 1 change (with --registration)")
    c.add_argument("--change", action="store_true", help="same as --multipath-index 1")

    c = sub.add_parser("registerdescriptor", help="register a multisig wallet descriptor on the device")
    c.add_argument("name", help="the wallet's name on the device (1 to 16 printable ASCII)")
    c.add_argument("desc", help="the wallet's descriptor, e.g. wsh(sortedmulti(2,[fp/48h/1h/0h/2h]tpub.../<0;1>/*,...))")
    c = sub.add_parser("register", help="register a BIP388 wallet policy (template and keys)")
    c.add_argument("--name", "--policy-name", dest="name", required=True, help="the wallet's name on the device")
    c.add_argument("--desc", "--policy-desc", "--policy", dest="desc", required=True,
                   help="template, e.g. wsh(sortedmulti(2,@0/**,@1/**))")
    c.add_argument("--key", "--keys", dest="key", action="append", required=True,
                   help="[fingerprint/path]xpub for @0, @1, ... in order (repeat)")

    # Done on the device: HWI's flags are taken so that these answer -9, not a usage error.
    na = "not available: done on the device"
    for name in ("promptpin", "togglepassphrase", "wipe"):
        sub.add_parser(name, help=na)
    sub.add_parser("sendpin", help=na).add_argument("pin", help="ignored")
    c = sub.add_parser("setup", help=na)
    c.add_argument("--label", "-l", help="ignored")
    c.add_argument("--backup_passphrase", "-b", help="ignored")
    c = sub.add_parser("restore", help=na)
    c.add_argument("--word_count", "-w", type=int, help="ignored")
    c.add_argument("--label", "-l", help="ignored")
    c = sub.add_parser("backup", help=na)
    c.add_argument("--label", "-l", help="ignored")
    c.add_argument("--backup_passphrase", "-b", help="ignored")
    return p


def _stdin_args() -> list[str]:
    # As HWI: one command per line, split like a shell, until a blank line or EOF.
    out = []
    for line in sys.stdin:
        line = line.rstrip("\r\n")
        if not line:
            break
        out += shlex.split(line)
    return out


# ---------------------------------------------------------------- devices


class Device:
    """An open device with its `info`, checked against --chain."""

    def __init__(self, client, info: dict, chain: str):
        self.client = client
        self.info = info
        self.chain = chain
        self.fingerprint = bytes(info["fingerprint"])
        self._xpubs = {}

    @property
    def coin(self) -> int:
        return coin_type(self.chain)

    def xpub(self, path: list[int]) -> str:
        key = format_path(path)
        if key not in self._xpubs:
            self._xpubs[key] = self.client.get_xpub(key)
        return self._xpubs[key]

    def close(self):
        self.client.close(checkpoint=True)  # a session that changed the device's trail ends signed


def _fingerprint(info: dict) -> str | None:
    fp = info.get("fingerprint")
    return bytes(fp).hex() if info.get("initialized") and fp else None


def _model(info: dict) -> str:
    return "amanat_emulator" if "emulator" in str(info.get("model", "")) else "amanat"


def _check_ready(info: dict, port: str) -> None:
    if not info.get("initialized"):
        raise HWIError(f"The device on {port} is not initialized: set it up on the device", DEVICE_NOT_INITIALIZED)
    if not info.get("fingerprint"):
        raise HWIError(f"The device on {port} is locked: unlock it on the device", DEVICE_NOT_READY)


def _probe(port: str) -> dict:
    from .client import Client

    with Client(port, timeout=PROBE_TIMEOUT) as c:
        return c.info()


def _only_fingerprint(args) -> str | None:
    """The one device to expose (--only or AMANAT_HWI_FINGERPRINT), or None."""
    fp = (args.only or os.environ.get(FINGERPRINT_ENV) or "").strip().lower() or None
    if fp is not None and (len(fp) != 8 or any(c not in "0123456789abcdef" for c in fp)):
        raise HWIError(f"Fingerprint must be 8 hex digits: {fp}", BAD_ARGUMENT)
    return fp


def _state(args) -> str | None:
    return args.state or os.environ.get(STATE_ENV) or None


def _ports(args) -> list[str]:
    """The ports to consider: the emulator of --state alone, or every device found."""
    from pathlib import Path

    state = _state(args)
    if state is None:
        from .discovery import find_devices

        return find_devices(_emulators(args))
    from .discovery import running_emulators

    target = Path(state).resolve()
    return [e["port"] for e in running_emulators() if Path(e["state"]).resolve() == target]


def enumerate_devices(args) -> list[dict]:
    from .discovery import known
    from .errors import DeviceBusyError

    only = _only_fingerprint(args)
    out = []
    for port in _ports(args):
        entry = {"type": DEVICE_TYPE, "model": "amanat", "label": None, "path": port,
                 "needs_pin_sent": False, "needs_passphrase_sent": False}
        try:
            info = _probe(port)
            entry["model"] = _model(info)
            _check_ready(info, port)
            entry["fingerprint"] = _fingerprint(info)
        except DeviceBusyError:
            # Busy is not broken: listed with what it said about itself last
            # time (no `error`: one would fail Bitcoin Core's enumeratesigners).
            seen = known(port) or {}
            entry["model"] = _model(seen)
            if seen.get("fingerprint"):
                entry["fingerprint"] = seen["fingerprint"]
            entry["busy"] = True
        except HWIError as e:
            # HWI's wording for a device that has no seed yet
            entry["error"] = "Not initialized" if e.code == DEVICE_NOT_INITIALIZED else e.message
            entry["code"] = e.code
        except Exception as e:
            msg, code = error_of(e)
            entry["error"] = f"Could not open client or get fingerprint information: {msg}"
            entry["code"] = code
        if only is None or entry.get("fingerprint") == only:
            out.append(entry)
    return out


def _select_port(args) -> str:
    from .discovery import known
    from .errors import DeviceBusyError

    fp = args.fingerprint.lower() if args.fingerprint else None
    if fp is not None and (len(fp) != 8 or any(c not in "0123456789abcdef" for c in fp)):
        raise HWIError(f"Fingerprint must be 8 hex digits: {args.fingerprint}", BAD_ARGUMENT)
    only = _only_fingerprint(args)
    if only is not None and fp not in (None, only):
        raise HWIError(f"Could not find device with specified fingerprint: only {only} is exposed",
                       DEVICE_CONN_ERROR)
    fp = fp or only
    if args.device_path:
        return args.device_path
    if not fp and not args.device_type and not _state(args):
        raise HWIError("You must specify a device type or fingerprint for all commands except enumerate",
                       NO_DEVICE_TYPE)
    ports = _ports(args)
    if fp:
        matches = []
        for port in ports:
            try:
                if _fingerprint(_probe(port)) == fp:
                    matches.append(port)
            except DeviceBusyError:
                if (known(port) or {}).get("fingerprint") == fp:
                    raise HWIError(f"The device {fp} on {port} is busy: another program is using it; answer "
                                   "or reject its prompt on the device, or stop that program", DEVICE_BUSY) from None
            except Exception as e:  # as HWI: a device that cannot answer is not the one
                log.debug("skipping %s: %s", port, e)
        ports = matches
    if not ports:
        raise HWIError("Could not find device with specified fingerprint or type", DEVICE_CONN_ERROR)
    if len(ports) > 1:
        what = f"have fingerprint {fp}" if fp else "are connected"
        raise HWIError(f"{len(ports)} Amanat devices {what} ({', '.join(ports)}): choose one with "
                       "--device-path", BAD_ARGUMENT)
    return ports[0]


def open_device(args) -> Device:
    from .client import Client

    port = _select_port(args)
    client = Client(port)
    try:
        info = client.info()
        _check_ready(info, port)
        if args.fingerprint and _fingerprint(info) != args.fingerprint.lower():
            raise HWIError(f"The device on {port} has fingerprint {_fingerprint(info)}, not "
                           f"{args.fingerprint}", DEVICE_CONN_ERROR)
        network = info.get("network")
        if args.chain not in DEVICE_CHAINS.get(network, ()):
            raise HWIError(f"--chain {args.chain} does not match the device's network ({network}); it answers "
                           f"--chain {' or '.join(DEVICE_CHAINS.get(network, ()))}", BAD_ARGUMENT)
        return Device(client, info, args.chain)
    except BaseException:
        client.close()
        raise


def _emulators(args) -> bool:
    return (args.allow_emulators or os.environ.get(EMULATORS_ENV, "").lower() in ("1", "true", "yes")
            or _state(args) is not None)


# ---------------------------------------------------------------- commands


def _account(n: int) -> int:
    if not 0 <= n < HARDENED:
        raise HWIError(f"Account must be between 0 and {HARDENED - 1}: {n}", BAD_ARGUMENT)
    return n


def _account_path(dev: Device, addr_type: str, account: int) -> list[int]:
    purpose = ADDR_TYPES[addr_type][0]
    return [purpose + HARDENED, dev.coin + HARDENED, _account(account) + HARDENED]


def cmd_getmasterxpub(args, dev: Device) -> dict:
    return {"xpub": dev.xpub(_account_path(dev, args.addr_type, args.account))}


def cmd_getxpub(args, dev: Device) -> dict:
    xpub = dev.xpub(parse_path(args.path))
    result = {"xpub": xpub}
    if args.expert:
        from embit import bip32
        from embit.networks import NETWORKS

        k = bip32.HDKey.from_string(xpub)
        result.update({
            "testnet": k.version != NETWORKS["main"]["xpub"],
            "private": k.is_private,
            "depth": k.depth,
            "parent_fingerprint": k.fingerprint.hex(),
            "child_num": k.child_number,
            "chaincode": k.chain_code.hex(),
            "pubkey": k.key.sec().hex(),
        })
    return result


def cmd_getdescriptors(args, dev: Device) -> dict:
    from .errors import ProtocolError

    got = dev.client.get_descriptors(_account(args.account))
    for branch in ("receive", "internal"):
        descs = got.get(branch) if isinstance(got, dict) else None
        if not isinstance(descs, list) or not descs:
            raise ProtocolError(f"the device sent no {branch} descriptors")
        for d in descs:
            if str(d) != with_checksum(str(d).partition("#")[0]):
                raise ProtocolError(f"the device sent a descriptor with a bad checksum: {d}")
    return {"receive": got["receive"], "internal": got["internal"]}


def _keypool_entry(dev: Device, addr_type: str, path: str | None, internal: bool, args) -> dict:
    if path is None:
        full = _account_path(dev, addr_type, args.account) + [1 if internal else 0]
    else:
        if not path.startswith("m"):
            raise HWIError("Path must start with m/", BAD_ARGUMENT)
        if not path.endswith("/*"):
            raise HWIError("Path must end with /*", BAD_ARGUMENT)
        full = parse_path(path[:-2])
    origin, rest = split_hardened(full)
    key = Key(dev.fingerprint, tuple(origin), dev.xpub(origin), tuple(rest), wildcard=True)
    return {"desc": account_descriptor(addr_type, key), "range": [args.start, args.end], "timestamp": "now",
            "internal": internal, "keypool": args.keypool, "active": args.keypool, "watchonly": True}


def cmd_getkeypool(args, dev: Device) -> list:
    if args.start < 0 or args.end < args.start:
        raise HWIError(f"Bad range {args.start}..{args.end}", BAD_ARGUMENT)
    if args.path is None and not args.internal:
        types = list(ADDR_TYPES) if args.all else [args.addr_type]
        return [_keypool_entry(dev, t, None, internal, args) for t in types for internal in (False, True)]
    if args.all:
        raise HWIError("--all cannot be combined with --path or --internal", BAD_ARGUMENT)
    return [_keypool_entry(dev, args.addr_type, args.path, args.internal, args)]


def cmd_displayaddress(args, dev: Device) -> dict:
    from embit import bip32

    if args.registration is not None:
        return _display_registered(args, dev)
    if args.desc is not None and re.search(r"multi(_a)?\(", args.desc):
        return _display_multisig(args.desc, dev)
    if args.desc is not None:
        sk = parse_single_key(args.desc)
        key = sk.key
        if key.fingerprint is None:
            raise HWIError(f"Descriptor missing origin info: {args.desc}", BAD_ARGUMENT)
        if key.fingerprint != dev.fingerprint:
            raise HWIError(f"Descriptor fingerprint does not match device: {args.desc}", BAD_ARGUMENT)
        ours = bip32.HDKey.from_string(dev.xpub(list(key.origin))).derive(list(key.steps)).key
        theirs = key.pubkey()
        same = ours.xonly() == theirs.xonly() if sk.addr_type == "tap" else ours.sec() == theirs.sec()
        if not same:
            raise HWIError(f"Key in descriptor does not match device: {args.desc}", BAD_ARGUMENT)
        addr_type, desc = sk.addr_type, args.desc.strip()
    else:
        if "*" in args.path:
            raise HWIError("displayaddress --path takes the path of one address, e.g. m/84h/1h/0h/0/0",
                           BAD_ARGUMENT)
        origin, rest = split_hardened(parse_path(args.path))
        xpub = dev.xpub(origin)
        ours = bip32.HDKey.from_string(xpub).derive(rest).key
        addr_type = args.addr_type
        # The device checks the descriptor against its own keys before showing it.
        desc = account_descriptor(addr_type, Key(dev.fingerprint, tuple(origin), xpub, tuple(rest)))
    expected = address_of(addr_type, ours, dev.chain)
    shown = dev.client.display_address(desc)
    if shown != expected:
        raise HWIError(f"The device showed {shown}, but the address of {desc} is {expected}", UNKNOWN_ERROR)
    return {"address": expected}


# ---------------------------------------------------------------- multisig wallets
#
# HWI's registration is opaque to the wallet: base64 of b"rdesc", a version
# (compact size 1) and four length-prefixed strings: name, descriptor, device
# type and the device's own proof (for Amanat, its 32-byte HMAC).

REGISTRATION_MAGIC = b"rdesc"


def encode_registration(name: str, descriptor: str, proof: bytes) -> str:
    from embit import compact

    def string(b: bytes) -> bytes:
        return compact.to_bytes(len(b)) + b

    blob = REGISTRATION_MAGIC + compact.to_bytes(1) + string(name.encode()) + string(descriptor.encode())
    return base64.b64encode(blob + string(DEVICE_TYPE.encode()) + string(proof)).decode()


def decode_registration(text: str) -> tuple[str, str, str, bytes]:
    """(name, descriptor, device type, proof) of an HWI registration."""
    from embit import compact

    try:
        s = io.BytesIO(base64.b64decode(text.strip(), validate=True))
        if s.read(5) != REGISTRATION_MAGIC or compact.read_from(s) != 1:
            raise ValueError("not a version 1 registration")
        name, desc, dtype, proof = (s.read(compact.read_from(s)) for _ in range(4))
        if s.read(1):
            raise ValueError("data after the proof")
        return name.decode(), desc.decode(), dtype.decode(), proof
    except Exception as e:
        raise HWIError(f"Invalid registration: {e}", BAD_ARGUMENT) from None


def _register(dev: Device, name: str, pol) -> tuple[str, bytes]:
    """Register on the device; (its descriptor, its proof), checked to be what was sent."""
    from .policy import PolicyError, canonical

    res = dev.client.register_wallet(name, pol.descriptor)
    try:
        same = canonical(res["descriptor"]) == pol.descriptor
    except PolicyError:
        same = False
    if not same:
        raise HWIError(f"The device registered {res['descriptor']}, not {pol.descriptor}", UNKNOWN_ERROR)
    return res["descriptor"], bytes(res["registration"])


def cmd_registerdescriptor(args, dev: Device) -> dict:
    from .policy import check_name, from_descriptor

    pol = from_descriptor(args.desc, check_name(args.name))
    desc, proof = _register(dev, pol.name, pol)
    return {"registration": encode_registration(pol.name, desc, proof)}


def cmd_register(args, dev: Device) -> dict:
    from .policy import check_name, from_wallet_policy

    pol = from_wallet_policy(args.desc, args.key, check_name(args.name))
    desc, proof = _register(dev, pol.name, pol)
    return {"hmac": proof.hex(), "registration": encode_registration(pol.name, desc, proof)}


def _registered_wallet(dev: Device, registration: str) -> dict:
    """The device's record of the wallet an HWI registration names, if the device made it."""
    from .policy import canonical

    name, desc, dtype, proof = decode_registration(registration)
    if dtype != DEVICE_TYPE:
        raise HWIError(f"The registration is for a {dtype} device, not {DEVICE_TYPE}", BAD_ARGUMENT)
    w = dev.client.get_wallet(name)
    if bytes(w["registration"]) != proof or canonical(w["descriptor"]) != canonical(desc):
        raise HWIError(f"The registration is not this device's wallet {name}", BAD_ARGUMENT)
    return w


def _display_registered(args, dev: Device) -> dict:
    from .policy import parse

    if args.index is None or not 0 <= args.index < HARDENED:
        raise HWIError("displayaddress --registration needs --index (0 to 2^31-1)", BAD_ARGUMENT)
    branch = 1 if args.change else args.multipath_index
    if branch not in (0, 1):
        raise HWIError("--multipath-index must be 0 (receive) or 1 (change)", BAD_ARGUMENT)
    w = _registered_wallet(dev, args.registration)
    name = w["name"]
    expected = parse(w["descriptor"]).address(CHAIN_NETWORK[dev.chain], args.index, branch == 1)
    shown = dev.client.wallet_address(name, args.index, branch == 1)
    if shown != expected:
        raise HWIError(f"The device showed {shown}, but address {args.index} of {name} is {expected}",
                       UNKNOWN_ERROR)
    return {"address": expected, "index": args.index, "multipath_index": branch}


def _display_multisig(text: str, dev: Device) -> dict:
    """A multisig descriptor at one index: our key checked, the address derived
    here, and the device (which knows it as a registered wallet) shows it."""
    from embit import bip32

    from .policy import parse

    ms = parse(text)
    if ms.ranged:
        raise HWIError(f"displayaddress --desc takes the descriptor of one address: {text}", BAD_ARGUMENT)
    mine = [k for k in ms.all_keys() if k.fingerprint == dev.fingerprint]
    if not mine:
        raise HWIError(f"Descriptor fingerprint does not match device: {text}", BAD_ARGUMENT)
    for k in mine:
        origin, rest = split_hardened(list(k.origin) + list(k.steps))
        ours = bip32.HDKey.from_string(dev.xpub(origin)).derive(rest).key
        if ours.xonly() != k.pubkey().xonly() or (ms.form != "tr" and ours.sec() != k.pubkey().sec()):
            raise HWIError(f"Key in descriptor does not match device: {text}", BAD_ARGUMENT)
    expected = ms.address(CHAIN_NETWORK[dev.chain])
    send = text.strip() if all(k.is_extended for k in ms.keys) else _registered_form(dev, ms, mine[0])
    shown = dev.client.display_address(send)
    if shown != expected:
        raise HWIError(f"The device showed {shown}, but the address of {text} is {expected}", UNKNOWN_ERROR)
    return {"address": expected}


def _registered_form(dev: Device, ms, key) -> str:
    """Hex keys (as Bitcoin Core infers them) name no xpub: find the registered
    wallet with this script and send it at the index, keys ending /change/index."""
    from .policy import PolicyError, parse

    tail = list(key.origin[-2:])
    if len(tail) != 2 or tail[0] not in (0, 1) or tail[1] >= HARDENED:
        raise HWIError("Key origin must end with /change/index", BAD_ARGUMENT)
    target = ms.script_pubkey()
    for w in dev.client.list_wallets():
        try:
            if "descriptor" in w and parse(w["descriptor"]).script_pubkey(tail[1], tail[0] == 1) == target:
                return w["descriptor"].split("#")[0].replace("/<0;1>/*", f"/{tail[0]}/{tail[1]}")
        except PolicyError:
            continue
    raise HWIError("The descriptor is not a wallet registered on this device", BAD_ARGUMENT)


def cmd_signtx(args, dev: Device) -> dict:
    from embit.psbt import PSBT

    if args.registration is not None:  # the device matches inputs to its wallets itself
        _registered_wallet(dev, args.registration)
    text = "".join(args.psbt.strip().strip("\"'").split())  # Core v27 quoted the PSBT; mail wraps it
    try:
        raw = base64.b64decode(text, validate=True)
        psbt = PSBT.parse(raw)
    except Exception as e:
        raise HWIError(f"Invalid PSBT: {e}" if str(e) else "Invalid PSBT", INVALID_TX) from None
    if not _has_our_input(psbt, dev.fingerprint):
        # As HWI: nothing for this device to sign is no error; the PSBT comes back as it was.
        return {"psbt": text, "signed": False}

    def progress(stage, done, total):
        log.debug("signtx %s: %s/%s", stage, done, total)

    if args.no_anti_exfil:
        log.warning("signtx: anti-exfil is off: the device's ECDSA nonces are not checked, so a compromised "
                    "device could leak its keys through these signatures")
    signed = dev.client.sign_psbt(raw, progress=progress, anti_exfil=not args.no_anti_exfil)
    log.debug("signtx: %d signature(s) added and verified, %d nonce(s) checked by anti-exfil", signed.signatures,
              signed.anti_exfil)
    return {"psbt": base64.b64encode(signed.psbt).decode(), "signed": signed.signatures > 0}


def _has_our_input(psbt, fingerprint: bytes) -> bool:
    for inp in psbt.inputs:
        if any(d.fingerprint == fingerprint for d in inp.bip32_derivations.values()):
            return True
        if any(d.fingerprint == fingerprint for _, d in inp.taproot_bip32_derivations.values()):
            return True
    return False


def cmd_signmessage(args, dev: Device) -> dict:
    from embit import bip32

    from .psbt_verify import verify_message_signature

    path = parse_path(args.path)
    if args.bip322:
        return _signmessage_bip322(args.message.encode(), path, dev)
    if path[:1] == [86 + HARDENED]:
        raise HWIError("Taproot keys (m/86h/...) have no BIP137 message signature (use --bip322)",
                       UNAVAILABLE_ACTION)
    pub = bip32.HDKey.from_string(dev.xpub(path)).key.sec()
    message = args.message.encode()
    signature = dev.client.sign_message(message, format_path(path))
    # the address type the path implies, as the device signs for it (BIP137 segwit headers)
    kind = {49 + HARDENED: "p2sh-p2wpkh", 84 + HARDENED: "p2wpkh"}.get(path[0] if path else None, "p2pkh")
    verify_message_signature(message, signature, pub, kind)
    return {"signature": signature}


def _signmessage_bip322(message: bytes, path: list[int], dev: Device) -> dict:
    """A one-input proof of the address at `path` (its to_spend, 0 coins):
    the device shows the message as "Proof of reserves", signs input 0, and
    its witness is the simple signature, checked here by libbitcoinkernel."""
    from embit import bip32

    from . import reserves, txbuild

    kind = {84 + HARDENED: "p2wpkh", 86 + HARDENED: "p2tr"}.get(path[0] if path else None)
    if kind is None or len(path) != 5 or any(i >= HARDENED for i in path[3:]):
        raise HWIError("BIP-322 simple signatures are for BIP84 and BIP86 addresses: "
                       "m/84h|86h/coin'/account'/change/index", BAD_ARGUMENT)
    account = txbuild.Account(kind, bip32.HDKey.from_string(dev.xpub(path[:3])), dev.fingerprint,
                              format_path(path[:3]))
    psbt = reserves.build_proof(account, message, [], (path[3], path[4]))
    signed = dev.client.sign_psbt(reserves.serialize_proof(psbt))
    from .psbt_raw import parse_psbt

    signature = reserves.simple_signature(parse_psbt(signed.psbt))
    reserves.verify_simple(account.output(path[3], path[4]).data, message, signature)
    return {"signature": signature}


COMMANDS = {
    "getmasterxpub": cmd_getmasterxpub,
    "getxpub": cmd_getxpub,
    "getdescriptors": cmd_getdescriptors,
    "getkeypool": cmd_getkeypool,
    "displayaddress": cmd_displayaddress,
    "signtx": cmd_signtx,
    "signmessage": cmd_signmessage,
    "registerdescriptor": cmd_registerdescriptor,
    "register": cmd_register,
}


# ---------------------------------------------------------------- main


def error_of(e: BaseException) -> tuple[str, int]:
    """(message, HWI code) of any failure."""
    from .errors import AmanatError, DeviceBusyError, DeviceError, ProtocolError, TransportError

    if isinstance(e, HWIError):
        return e.message, e.code
    if isinstance(e, DescriptorError):
        return str(e), BAD_ARGUMENT
    from .policy import PolicyError

    if isinstance(e, PolicyError):
        return e.message, BAD_ARGUMENT
    if isinstance(e, DeviceError):
        return str(e), DEVICE_CODES.get(e.name, UNKNOWN_ERROR)
    if isinstance(e, DeviceBusyError):
        return e.message, DEVICE_BUSY
    if isinstance(e, (TransportError, ProtocolError)):
        return e.message, DEVICE_CONN_ERROR
    if isinstance(e, AmanatError):  # SignatureError: the device's signature is bad
        return e.message, UNKNOWN_ERROR
    return str(e) or type(e).__name__, UNKNOWN_ERROR


def run(args):
    # -p "" is "no passphrase" (what tools pass by default); any other is refused.
    if args.password or args.stdinpass:
        raise HWIError("Amanat takes no passphrase from the host: it is entered on the device", BAD_ARGUMENT)
    if args.device_type is not None and args.device_type.lower() not in (DEVICE_TYPE, "amanat_emulator"):
        raise HWIError("Unknown device type specified", UNKNOWN_DEVICE_TYPE)
    if args.command == "enumerate":
        return enumerate_devices(args)
    if args.command not in COMMANDS:
        raise HWIError(f"Amanat does not support {args.command} from the host: it is done on the device",
                       UNAVAILABLE_ACTION)
    dev = open_device(args)
    try:
        return COMMANDS[args.command](args, dev)
    finally:
        dev.close()


def process_commands(argv: list[str]):
    if "--stdin" in argv:
        try:
            argv = argv + _stdin_args()
        except ValueError as e:
            return {"error": f"cannot split the command read from stdin: {e}", "code": MISSING_ARGUMENTS}
    args = get_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.debug else logging.WARNING)
    try:
        return run(args)
    except Exception as e:
        if args.debug:
            log.exception("%s failed", args.command)
        msg, code = error_of(e)
        return {"error": msg, "code": code}


class _Terminated(KeyboardInterrupt):
    pass


def _terminate(signum, frame):
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    import signal

    argv = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = process_commands(argv)
    except SystemExit as e:  # usage error (2, JSON already printed), --help or --version (0)
        return e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt as e:  # the client has taken any prompt off the device
        how = "SIGTERM" if isinstance(e, _Terminated) else "Ctrl-C"
        print(json.dumps({"error": f"Interrupted ({how}): the prompt was taken off the device; nothing was signed",
                          "code": ACTION_CANCELED}), flush=True)
        return 143 if isinstance(e, _Terminated) else 130
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`amanat psbt sign`: the device's review and signer, run on the host with a
software key (online cosigner keys, testnet rehearsals, the reference the
device is checked against).

The rules are not read a second time: the firmware's own review
(signer/review.py: refusals, change detection, fee limits) and signer
(signer/psbt_signer.py) are imported here on CPython, where embit signs
through libsecp256k1 with the device's conventions (RFC6979 with low-R
grinding, so ECDSA signatures are byte for byte the device's; BIP340 with
fresh auxiliary randomness into the BIP371 fields). What comes back goes
through the host's verifier, as every PSBT from a device does.

The key file holds a master extended private key (xprv on main, tprv
elsewhere). It is read once into a bytearray, wiped once parsed, and never
printed: errors name the file, never its content. embit keeps the parsed
key as bytes for as long as the Keystore lives (one command).
"""

import io
from dataclasses import dataclass

from embit import base58
from embit.networks import NETWORKS

from . import micropython_shim
from .errors import AmanatError
from .anti_exfil import PREFIX, stripped
from .psbt_raw import gc_paused, parse_maps
from .psbt_tools import each_in_processes
from .psbt_verify import verify_new_signatures

micropython_shim.install()  # before the firmware's modules are imported

from .firmware.signer import errors as fw_errors  # noqa: E402
from .firmware.signer.keystore import Keystore  # noqa: E402
from .firmware.signer.psbt_signer import sign_psbt_stream  # noqa: E402
from .firmware.signer.review import review_psbt  # noqa: E402
from .firmware.signer.secrets import wipe  # noqa: E402
from .firmware.signer.wallets import Listed  # noqa: E402

PRIVATE_VERSIONS = {NETWORKS["main"]["xprv"]: ("main",), NETWORKS["test"]["xprv"]: ("test", "signet", "regtest")}
PUBLIC_VERSIONS = {NETWORKS["main"]["xpub"], NETWORKS["test"]["xpub"]}


class KeyFileError(AmanatError):
    """The key file is not a master extended private key for the network."""


class Refused(AmanatError):
    """The device's rules refuse the PSBT: `name` is the device's error name."""

    def __init__(self, message: str, name: str = "REFUSED"):
        super().__init__(message, name)  # both in args: it crosses back from a worker process
        self.name = name


def load_key(path: str, network: str | None = None) -> Keystore:
    """A Keystore on the master key in `path` (for `network`, or the key's own:
    main for xprv, test for tprv)."""
    from embit import bip32

    try:
        with open(path, "rb") as f:
            data = bytearray(f.read())
    except OSError as e:
        raise KeyFileError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        try:
            text = data.decode().strip()
            raw = base58.decode_check(text)
        except Exception:
            raise KeyFileError(f"{path}: not an extended private key (one xprv or tprv, base58)") from None
        if len(raw) != 78 or (raw[:4] not in PRIVATE_VERSIONS and raw[:4] not in PUBLIC_VERSIONS):
            raise KeyFileError(f"{path}: not an extended private key (one xprv or tprv, base58)")
        if raw[:4] in PUBLIC_VERSIONS:
            raise KeyFileError(f"{path}: an extended public key; signing needs the private key (xprv/tprv)")
        if raw[4] != 0:
            raise KeyFileError(f"{path}: not a master key (depth {raw[4]}); give the master key, whose "
                               "fingerprint the PSBT's derivations name")
        networks = PRIVATE_VERSIONS[raw[:4]]
        if network is None:
            network = networks[0]
        elif network not in networks:
            kind = "a mainnet key" if networks == ("main",) else "a test-network key"
            raise KeyFileError(f"{path}: {kind}, and the network asked for is {network}")
        ks = Keystore(network)
        root = bip32.HDKey.parse(raw)
        root.version = ks.network["xprv"]
        ks.root = root
        return ks
    finally:
        wipe(data)


@dataclass
class SoftSigned:
    psbt: bytes
    signatures: int  # added and verified
    review: dict  # the device's review summary (docs/protocol.md, sign_psbt)


def sign(raw: bytes, ks: Keystore, wallets=()) -> SoftSigned:
    """Review `raw` by the device's rules and sign what is ours; Refused
    (with the device's words) if the device would refuse it."""
    with gc_paused():
        if PREFIX in raw:  # maybe anti-exfil fields of a device's signing round: they go no further
            raw = stripped(parse_maps(raw)).serialize()
        try:
            registry = Listed(list(wallets), ks) if wallets else None
            src = io.BytesIO(raw)
            summary, plan = review_psbt(src, ks, registry=registry)
            dst = io.BytesIO()
            sign_psbt_stream(src, dst, ks, plan, registry)
        except fw_errors.DeviceError as e:
            raise Refused(e.message, e.name) from None
        signed = dst.getvalue()
        return SoftSigned(signed, verify_new_signatures(raw, signed), summary.to_dict())


_POOL_KEY = {}  # the Keystore and wallets a forked worker inherits: the key never crosses a pipe


def _sign_in_worker(raw: bytes) -> SoftSigned:
    return sign(raw, _POOL_KEY["ks"], _POOL_KEY["wallets"])


def sign_many(raws: list[bytes], ks: Keystore, wallets=(), jobs: int | None = None) -> list:
    """sign() of each PSBT: its SoftSigned or the AmanatError it failed with,
    in forked processes, one per core, when there are several."""
    _POOL_KEY.update(ks=ks, wallets=list(wallets))
    try:
        return each_in_processes(_sign_in_worker, raws, jobs)
    finally:
        _POOL_KEY.clear()

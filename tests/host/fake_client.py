"""A fake Amanat device for host tests: the Client and find_devices APIs,
backed by an embit key from a mnemonic, signing on CPython.

`install(monkeypatch, FakeDevice(...), ...)` puts fake `amanat.client` and
`amanat.discovery` modules in place; code that imports them lazily (as
`amanat.hwi` does) then talks to these devices.
"""

import hashlib
import re
import sys
import types
from base64 import b64encode
from dataclasses import dataclass, field

from coincurve import PrivateKey
from embit import bip32, bip39, compact, hashes
from embit.descriptor import Descriptor
from embit.descriptor.checksum import add_checksum, checksum
from embit.networks import NETWORKS
from embit.psbt import PSBT
from embit.transaction import SIGHASH

from amanat import descriptors, policy, txbuild
from amanat.client import Signed, check_limits
from amanat.psbt_raw import PSBT_IN_TAP_KEY_SIG
from amanat.psbt_verify import verify_new_signatures
from amanat.errors import DeviceBusyError, DeviceError, TransportError

MNEMONIC = "abandon " * 11 + "about"
OTHER_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
TAP_KEY_SIG = bytes([PSBT_IN_TAP_KEY_SIG])  # embit keeps it in `unknown`
HARDENED = 0x80000000

REJECTED, BAD_PARAMS, REFUSED = 7, 4, 9
KINDS = (("sh(wpkh(", "p2sh-p2wpkh"), ("wpkh(", "p2wpkh"), ("pkh(", "p2pkh"), ("tr(", "p2tr"))


def root_key(mnemonic: str = MNEMONIC, network: str = "regtest") -> bip32.HDKey:
    return bip32.HDKey.from_seed(bip39.mnemonic_to_seed(mnemonic), version=NETWORKS[network]["xprv"])


def sign_psbt(psbt: PSBT, root: bip32.HDKey, sighash: int | None = None) -> int:
    """Sign every input `root` has a derivation for, as the device does:
    ECDSA into partial_sigs, taproot key path into PSBT_IN_TAP_KEY_SIG.
    sighash None means the input's PSBT_IN_SIGHASH_TYPE, else ALL (ECDSA) /
    DEFAULT (taproot). Returns the count."""
    from amanat import psbt_raw
    from amanat.psbt_verify import script_code
    from amanat.sighash import TxDigests

    fp = root.my_fingerprint
    count = 0
    spent = [psbt_raw.spent_output(psbt, i) for i in range(len(psbt.inputs))]
    digests = TxDigests.from_tx(psbt_raw.unsigned_tx(psbt), spent)  # every sighash type (embit's has gaps)
    for i, inp in enumerate(psbt.inputs):
        if inp.is_taproot:
            for pub, (leaves, der) in inp.taproot_bip32_derivations.items():
                if der.fingerprint != fp or leaves:
                    continue
                sh = sighash if sighash is not None else inp.sighash_type or SIGHASH.DEFAULT
                key = root.derive(der.derivation).key.taproot_tweak(inp.taproot_merkle_root or b"")
                sig = key.schnorr_sign(digests.taproot(i, sh)).serialize()
                inp.unknown[TAP_KEY_SIG] = sig + (bytes([sh]) if sh else b"")
                count += 1
        else:
            for pub, der in inp.bip32_derivations.items():
                if der.fingerprint != fp:
                    continue
                sh = sighash if sighash is not None else inp.sighash_type or SIGHASH.ALL
                key = root.derive(der.derivation).key
                code, segwit = script_code(i, inp, spent[i].script_pubkey, pub.sec())
                digest = (digests.segwit_v0(i, code.data, spent[i].value, sh) if segwit
                          else digests.legacy(i, code.data, sh))
                sig = key.sign(digest).serialize()
                inp.partial_sigs[pub] = sig + bytes([sh])
                count += 1
    return count


def flip_bit(sig: bytes, at: int = 10) -> bytes:
    return sig[:at] + bytes([sig[at] ^ 1]) + sig[at + 1 :]


@dataclass
class FakeDevice:
    port: str
    mnemonic: str = MNEMONIC
    network: str = "regtest"
    initialized: bool = True
    locked: bool = False
    emulator: bool = False
    answers: bool = True  # False: the port cannot be opened
    busy: bool = False  # another program holds the port (its lock)
    reject: bool = False  # the officer rejects every prompt
    error: tuple | None = None  # (code, message): every request but info fails so
    tamper: str | None = None  # "flip", "output", "drop", "nothing": a misbehaving signer
    calls: list = field(default_factory=list)
    wallets: dict = field(default_factory=dict)  # name -> canonical descriptor (registered)
    limits: dict = field(default_factory=lambda: {"fee_percent_tenths": 100, "fee_max_sat": 1_000_000})
    capacity: dict = field(default_factory=lambda: {"psbt_bytes": 1 << 20, "inputs": 2500, "outputs": 10000,
                                                    "flash_free": 1 << 21})  # info's limits

    @property
    def root(self) -> bip32.HDKey:
        return root_key(self.mnemonic, self.network)

    @property
    def fingerprint(self) -> bytes:
        return self.root.my_fingerprint

    @property
    def coin(self) -> int:
        return descriptors.coin_type(self.network)


class FakeClient:
    devices: dict = {}  # port -> FakeDevice, set by install()

    def __init__(self, port: str, timeout: float = 10.0):
        dev = self.devices.get(port)
        if dev is None or not dev.answers:
            raise TransportError(f"cannot open {port}: [Errno 2] No such file or directory")
        if dev.busy:
            raise DeviceBusyError(f"the device on {port} is busy: another program is using it")
        self.dev = dev
        self.port = port
        self.timeout = timeout
        self.anti_exfil = False  # the fake signs in one round, as firmware without anti-exfil

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self, checkpoint: bool = False):
        self.dev.calls.append(("close",))

    def _gate(self, method: str, *params, prompt: bool = False):
        self.dev.calls.append((method, *params))
        if self.dev.error:
            raise DeviceError(*self.dev.error)
        if prompt and self.dev.reject:
            raise DeviceError(REJECTED, f"the officer rejected {method}")

    def info(self) -> dict:
        dev = self.dev
        dev.calls.append(("info",))
        return {
            "firmware": "0.1.0",
            "protocol": 1,
            "model": "amanat-emulator" if dev.emulator else "amanat-esp32",
            "network": dev.network,
            "initialized": dev.initialized,
            "locked": dev.locked or not dev.initialized,
            "fingerprint": dev.fingerprint if dev.initialized and not dev.locked else None,
            "target": "unix" if dev.emulator else "esp32",
            "heap": {"size": 131072, "free": 88000, "free_after_boot": 90000, "free_after_imports": None, "peak": None},
            "limits": dict(dev.capacity),
            "trail": {"seq": 1, "head": "00" * 32, "used": 0, "capacity": 1 << 20, "percent": 0, "unsigned": 0,
                      "checkpoint_seq": 0, "key": None, "log_key": None, "warning": None},
        }

    def get_xpub(self, path: str) -> str:
        path = descriptors.normalize_path(path)  # as the real client sends it
        self._gate("get_xpub", path)
        return self.dev.root.derive(path).to_public().to_base58()

    def get_descriptors(self, account: int) -> dict:
        self._gate("get_descriptors", account)
        dev, out = self.dev, {"receive": [], "internal": []}
        for template, purpose in (("pkh(%s)", 44), ("sh(wpkh(%s))", 49), ("wpkh(%s)", 84), ("tr(%s)", 86)):
            origin = f"{purpose}h/{dev.coin}h/{account}h"
            xpub = dev.root.derive("m/" + origin).to_public().to_base58()
            for chain, name in ((0, "receive"), (1, "internal")):
                key = f"[{dev.fingerprint.hex()}/{origin}]{xpub}/{chain}/*"
                out[name].append(add_checksum(template % key))
        return out

    def display_address(self, descriptor: str, status=None) -> str:
        self._gate("display_address", descriptor, prompt=True)
        if "multi" in descriptor:
            return self._display_multisig(descriptor)
        body, _, chk = descriptor.partition("#")
        if chk and chk != checksum(body):
            raise DeviceError(BAD_PARAMS, "descriptor checksum does not match")
        desc = Descriptor.from_string(body)
        key = desc.keys[0]
        if key.origin is None or key.origin.fingerprint != self.dev.fingerprint:
            raise DeviceError(BAD_PARAMS, "the descriptor's key is not this device's")
        path = list(key.origin.derivation)
        claimed = key.key
        if key.is_extended:
            rest = key.allowed_derivation.indexes if key.allowed_derivation else []
            path += rest
            claimed = key.key.derive(rest).key
        ours = self.dev.root.derive(path).key.get_public_key()
        if ours.xonly() != claimed.xonly():
            raise DeviceError(BAD_PARAMS, "the descriptor's key is not this device's key")
        # Not desc.address(): embit 0.8 ignores the steps after a non-ranged xpub.
        kind = next(k for prefix, k in KINDS if body.startswith(prefix))
        return txbuild.script_for(kind, ours)[0].address(NETWORKS[self.dev.network])

    # -- registered multisig wallets and fee limits, as docs/protocol.md describes

    def _proof(self, name: str, descriptor: str) -> bytes:
        return hashlib.sha256(self.dev.fingerprint + name.encode() + b"\0" + descriptor.encode()).digest()

    def _wallet(self, name: str):
        if name not in self.dev.wallets:
            raise DeviceError(BAD_PARAMS, f"no wallet named {name}")
        return policy.parse(self.dev.wallets[name])

    def _ours(self, key) -> bool:
        if key.fingerprint != self.dev.fingerprint:
            return False
        return self.dev.root.derive(list(key.origin)).to_public().to_base58() == key.key

    def register_wallet(self, name: str, descriptor: str, status=None) -> dict:
        self._gate("register_wallet", name, descriptor)
        try:
            desc = policy.canonical(descriptor)
        except policy.PolicyError as e:
            raise DeviceError(BAD_PARAMS, e.message) from None
        if not any(self._ours(k) for k in policy.parse(desc).keys):
            raise DeviceError(BAD_PARAMS, "no key of this device in the wallet")
        if self.dev.wallets.get(name, desc) != desc:
            raise DeviceError(BAD_PARAMS, f"wallet name {name} is already used for other keys")
        if name not in self.dev.wallets:
            self._gate("register_wallet/prompt", prompt=True)
            self.dev.wallets[name] = desc
        return {"name": name, "descriptor": desc, "registration": self._proof(name, desc)}

    def list_wallets(self) -> list:
        self._gate("list_wallets")
        return [{"name": n, "descriptor": d} for n, d in self.dev.wallets.items()]

    def get_wallet(self, name: str) -> dict:
        self._gate("get_wallet", name)
        ms = self._wallet(name)
        keys = [{"fingerprint": k.fingerprint, "path": k.path, "xpub": k.key, "ours": self._ours(k)} for k in ms.keys]
        desc = self.dev.wallets[name]
        return {"name": name, "descriptor": desc, "threshold": ms.threshold, "keys": keys,
                "registration": self._proof(name, desc)}

    def delete_wallet(self, name: str, status=None) -> None:
        self._gate("delete_wallet", name, prompt=True)
        self._wallet(name)
        del self.dev.wallets[name]

    def wallet_address(self, name: str, index: int, change: bool = False, status=None) -> str:
        self._gate("wallet_address", name, index, change, prompt=True)
        return self._wallet(name).address(self.dev.network, index, change)

    def _display_multisig(self, descriptor: str) -> str:
        """A registered wallet's descriptor at one index (keys ending /change/index)."""
        body = descriptor.split("#")[0]
        steps = set(re.findall(r"\]\w+/([0-9]+)/([0-9]+)", body))
        if len(steps) != 1:
            raise DeviceError(BAD_PARAMS, "every key must end with the same /change/index")
        change, index = map(int, steps.pop())
        wallet_form = re.sub(r"(\]\w+)/[0-9]+/[0-9]+", r"\1/<0;1>/*", body)
        for name, desc in self.dev.wallets.items():
            if policy.canonical(wallet_form) == desc:
                return policy.parse(desc).address(self.dev.network, index, change == 1)
        raise DeviceError(BAD_PARAMS, "the descriptor is not a registered wallet of this device")

    def get_limits(self) -> dict:
        self._gate("get_limits")
        return dict(self.dev.limits)

    def set_limits(self, fee_percent_tenths: int, fee_max_sat: int, status=None) -> dict:
        self._gate("set_limits", fee_percent_tenths, fee_max_sat, prompt=True)
        self.dev.limits = {"fee_percent_tenths": fee_percent_tenths, "fee_max_sat": fee_max_sat}
        return dict(self.dev.limits)

    def sign_psbt(self, raw: bytes, progress=None, anti_exfil=True) -> Signed:
        """As the real client: what the device returns is verified here
        (SignatureError for a tampering device) before it is handed back."""
        check_limits(raw, self.info()["limits"])
        signed = self._device_signs(raw)
        return Signed(signed, verify_new_signatures(raw, signed), self._review(PSBT.parse(raw)))

    def _review(self, psbt: PSBT) -> dict:
        """The device's review (docs/protocol.md): outputs with a derivation of this device are change."""
        net = NETWORKS[self.dev.network]
        spends, change = [], []
        for out in psbt.outputs:
            ders = list(out.bip32_derivations.values()) + [d for _, d in out.taproot_bip32_derivations.values()]
            ours = [d for d in ders if d.fingerprint == self.dev.fingerprint]
            entry = {"address": out.script_pubkey.address(net), "amount_sat": out.value}
            if ours:
                change.append(dict(entry, path=descriptors.format_path(ours[0].derivation)))
            else:
                spends.append(entry)
        spent = [inp.utxo.value for inp in psbt.inputs if inp.utxo is not None]
        fee = sum(spent) - sum(out.value for out in psbt.outputs) if len(spent) == len(psbt.inputs) else 0
        vsize = 11 + 68 * len(psbt.inputs) + 31 * len(psbt.outputs)  # a P2WPKH-sized estimate, as a device gives one
        return {"wallet": None, "spends": spends, "change": change, "fee_sat": fee, "vsize": vsize,
                "fee_rate_tenths": (fee * 20 + vsize) // (2 * vsize), "warnings": []}

    def _device_signs(self, raw: bytes) -> bytes:
        """The PSBT the device returns, as `tamper` misbehaves."""
        self._gate("sign_psbt", raw, prompt=True)
        psbt = PSBT.parse(raw)
        if self.dev.tamper == "nothing":
            return raw
        if sign_psbt(psbt, self.dev.root) == 0:
            raise DeviceError(REFUSED, "no input of this PSBT is ours")
        inp = psbt.inputs[0]
        if self.dev.tamper == "flip":
            if TAP_KEY_SIG in inp.unknown:
                inp.unknown[TAP_KEY_SIG] = flip_bit(inp.unknown[TAP_KEY_SIG])
            else:
                pub = next(iter(inp.partial_sigs))
                inp.partial_sigs[pub] = flip_bit(inp.partial_sigs[pub], at=-5)
        elif self.dev.tamper == "output":
            psbt.outputs[0].value += 1
        elif self.dev.tamper == "drop":
            inp.bip32_derivations.clear()
            inp.taproot_bip32_derivations.clear()
        return psbt.serialize()

    def sign_message(self, message: bytes, path: str, status=None) -> str:
        path = descriptors.normalize_path(path)  # as the real client sends it
        self._gate("sign_message", message, path, prompt=True)
        data = b"\x18Bitcoin Signed Message:\n" + compact.to_bytes(len(message)) + message
        key = PrivateKey(self.dev.root.derive(path).key.secret)
        rec = key.sign_recoverable(hashes.double_sha256(data), hasher=None)
        purpose = descriptors.parse_path(path)[0]  # BIP137 header of the address type the path implies
        base = {49 + HARDENED: 35, 84 + HARDENED: 39}.get(purpose, 31)
        sig = bytes([base + rec[64]]) + rec[:64]
        if self.dev.tamper == "flip":
            sig = flip_bit(sig, at=40)
        return b64encode(sig).decode()


def install(monkeypatch, *devices: FakeDevice) -> dict:
    """Make amanat.client.Client and amanat.discovery.find_devices the fakes."""
    registry = {d.port: d for d in devices}
    client_mod = types.ModuleType("amanat.client")
    client_mod.Client = type("Client", (FakeClient,), {"devices": registry})
    discovery_mod = types.ModuleType("amanat.discovery")

    def find_devices(include_emulators: bool) -> list[str]:
        return [p for p, d in registry.items() if include_emulators or not d.emulator]

    def known(port: str) -> dict | None:
        # what the real cache holds once the device answered (discovery.remember)
        d = registry.get(port)
        return None if d is None else {"port": port, "fingerprint": d.fingerprint.hex(), "network": d.network,
                                       "model": "amanat-emulator" if d.emulator else "amanat-esp32"}

    discovery_mod.find_devices = find_devices
    discovery_mod.known = known
    monkeypatch.setitem(sys.modules, "amanat.client", client_mod)
    monkeypatch.setitem(sys.modules, "amanat.discovery", discovery_mod)
    return registry

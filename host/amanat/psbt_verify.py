"""Check a PSBT signed by the device before handing it to a wallet.

The host does not trust the device's word that it signed what it was shown:
it checks that the device changed nothing but added signatures, and verifies
every new signature (libsecp256k1 via coincurve) against a sighash the host
computes itself. A bad signature means a broken signer, or one that signed
something other than what the officer was shown.
"""

import base64
import hashlib
from contextlib import contextmanager

from coincurve import PublicKey, PublicKeyXOnly
from embit import compact, hashes, script
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import SIGHASH

from . import psbt_raw, taproot
from .errors import PsbtError, SignatureError
from .psbt_raw import PSBT_IN_PARTIAL_SIG, PSBT_IN_TAP_KEY_SIG, is_signature_key

ACP = SIGHASH.ANYONECANPAY
# Sighash types whose digest embit 0.8 computes right (cross-checked against
# libbitcoinkernel in tests/host/test_psbt_verify.py). Left out: legacy SINGLE
# (embit blanks outputs with value 0xFFFFFFFF instead of -1) and taproot
# SINGLE / ANYONECANPAY (embit hashes the raw output and the whole input
# instead of what BIP341 asks). The device signs with ALL/DEFAULT anyway.
ECDSA_LEGACY_OK = {SIGHASH.ALL, SIGHASH.NONE, SIGHASH.ALL | ACP, SIGHASH.NONE | ACP}
ECDSA_SEGWIT_OK = ECDSA_LEGACY_OK | {SIGHASH.SINGLE, SIGHASH.SINGLE | ACP}
SCHNORR_OK = {SIGHASH.DEFAULT, SIGHASH.ALL, SIGHASH.NONE}


def verify_new_signatures(before: bytes, after: bytes) -> int:
    """Return how many signatures `after` adds to `before`, all verified.

    Raise SignatureError if anything but signatures was added, removed or
    changed, or if a new signature does not verify.
    """
    old, old_maps = _parse(before, "the PSBT sent to the device")
    new, new_maps = _parse(after, "the PSBT returned by the device")
    _check_same_transaction(old, new)
    added = _only_signatures_added(old_maps, new_maps)
    if not added:
        return 0
    checker = SignatureChecker(new)
    count = 0
    for i, keys in added.items():
        for key in keys:
            checker.check(i, key, new_maps.inputs[i][key])
            count += 1
    return count


@contextmanager
def _as_signature_error():
    """A malformed PSBT met while checking the device's work is the device's
    fault: a SignatureError, as a bad signature is."""
    try:
        yield
    except PsbtError as e:
        raise SignatureError(e.message) from None


def _parse(raw: bytes, what: str) -> tuple[PSBT, psbt_raw.Maps]:
    with _as_signature_error():
        return psbt_raw.parse(raw, what)


def _check_same_transaction(old: PSBT, new: PSBT) -> None:
    """Name the first input or output that differs, for a useful error."""
    if old.version != new.version:
        raise SignatureError(f"the device changed the PSBT version ({old.version} -> {new.version})")
    if len(old.inputs) != len(new.inputs) or len(old.outputs) != len(new.outputs):
        raise SignatureError("the device changed the number of inputs or outputs")
    with _as_signature_error():
        a, b = psbt_raw.unsigned_tx(old), psbt_raw.unsigned_tx(new)
    for i, (x, y) in enumerate(zip(a.vin, b.vin)):
        if x.serialize() != y.serialize():
            raise SignatureError(f"input {i}: the device changed the outpoint or sequence")
    for i, (x, y) in enumerate(zip(a.vout, b.vout)):
        if x.serialize() != y.serialize():
            raise SignatureError(f"output {i}: the device changed the amount or script")
    if (a.version, a.locktime) != (b.version, b.locktime):
        raise SignatureError("the device changed the transaction version or locktime")


def _signed_globals(glob: dict) -> dict:
    """The global fields as a signer leaves them: BIP370 has one signing with
    SIGHASH_ALL clear the Inputs and Outputs Modifiable flags."""
    key = bytes([psbt_raw.PSBT_GLOBAL_TX_MODIFIABLE])
    if len(glob.get(key, b"")) != 1:
        return glob
    cleared = bytes([glob[key][0] & ~psbt_raw.MODIFIABLE_INPUTS_OUTPUTS])
    return {k: cleared if k == key else v for k, v in glob.items()}


def _only_signatures_added(old: psbt_raw.Maps, new: psbt_raw.Maps) -> dict[int, list[bytes]]:
    """{input index: [keys of new signature records]}; raise on any other change."""
    if _signed_globals(old.glob) != new.glob:
        raise SignatureError("the device changed the global fields of the PSBT")
    for j, (x, y) in enumerate(zip(old.outputs, new.outputs)):
        if x != y:
            raise SignatureError(f"output {j}: the device changed its PSBT fields")
    added = {}
    for i, (x, y) in enumerate(zip(old.inputs, new.inputs)):
        for key, value in x.items():
            if key not in y:
                raise SignatureError(f"input {i}: the device removed field {key.hex()}")
            if y[key] != value:
                raise SignatureError(f"input {i}: the device changed field {key.hex()}")
        extra = [k for k in y if k not in x]
        for key in extra:
            if not is_signature_key(key):
                raise SignatureError(f"input {i}: the device added field {key.hex()}, not a signature")
        if extra:
            added[i] = extra
    return added


class SignatureChecker:
    """Verifies the signature records of a PSBT against sighashes of the
    transaction it states and the outputs its inputs spend."""

    def __init__(self, psbt: PSBT):
        self.psbt = psbt
        with _as_signature_error():
            self.tx = psbt_raw.unsigned_tx(psbt)
            self.spent = [psbt_raw.spent_output(psbt, i) for i in range(len(psbt.inputs))]

    def check(self, i: int, key: bytes, value: bytes) -> None:
        """Verify one signature record (its PSBT key and value) of input i.
        A malformed PSBT must not end in a traceback: any unexpected
        failure is a SignatureError naming the input."""
        try:
            if key[0] == PSBT_IN_PARTIAL_SIG:
                self.check_ecdsa(i, key[1:], value)
            elif key[0] == PSBT_IN_TAP_KEY_SIG:
                self.check_taproot_key(i, value)
            else:
                self.check_taproot_script(i, key[1:33], key[33:], value)
        except SignatureError:
            raise
        except Exception as e:
            raise SignatureError(f"input {i}: cannot check its signature ({type(e).__name__}: {e})") from None

    def utxo(self, i: int):
        if self.spent[i] is None:
            raise SignatureError(f"input {i}: no previous output in the PSBT, cannot check its signature")
        return self.spent[i]

    # -- ECDSA (legacy, P2SH, segwit v0) --

    def check_ecdsa(self, i: int, pub: bytes, sig: bytes) -> None:
        inp = self.psbt.inputs[i]
        utxo = self.utxo(i)
        code, segwit = _script_code(i, inp, utxo.script_pubkey, pub)
        if len(sig) < 9:
            raise SignatureError(f"input {i}: signature too short")
        der, sighash = sig[:-1], sig[-1]
        allowed = ECDSA_SEGWIT_OK if segwit else ECDSA_LEGACY_OK
        _check_sighash(i, sighash, inp.sighash_type, allowed, schnorr=False)
        if segwit:
            digest = self.tx.sighash_segwit(i, code, utxo.value, sighash=sighash)
        else:
            digest = self.tx.sighash_legacy(i, code, sighash=sighash)
        try:
            ok = PublicKey(pub).verify(der, digest, hasher=None)
        except Exception:  # not strict DER, or a bad key
            ok = False
        if not ok:
            raise SignatureError(f"input {i}: invalid ECDSA signature for key {pub.hex()}")

    # -- Schnorr (taproot) --

    def _taproot_digest(self, i: int, sig: bytes, **leaf) -> tuple[bytes, bytes]:
        inp = self.psbt.inputs[i]
        if len(sig) == 64:
            sighash = SIGHASH.DEFAULT
        elif len(sig) == 65 and sig[64] != SIGHASH.DEFAULT:
            sighash = sig[64]
        else:
            raise SignatureError(f"input {i}: Schnorr signature of {len(sig)} bytes")
        _check_sighash(i, sighash, inp.sighash_type, SCHNORR_OK, schnorr=True)
        outs = [self.utxo(j) for j in range(len(self.spent))]
        digest = self.tx.sighash_taproot(
            i,
            script_pubkeys=[o.script_pubkey for o in outs],
            values=[o.value for o in outs],
            sighash=sighash,
            **leaf,
        )
        return sig[:64], digest

    def _output_key(self, i: int) -> bytes:
        spk = self.utxo(i).script_pubkey
        if spk.script_type() != "p2tr":
            raise SignatureError(f"input {i}: taproot signature on a {spk.script_type()} input")
        return spk.data[2:34]

    def check_taproot_key(self, i: int, sig: bytes) -> None:
        out_key = self._output_key(i)
        sig64, digest = self._taproot_digest(i, sig)
        if not _schnorr_ok(out_key, sig64, digest):
            raise SignatureError(f"input {i}: invalid taproot key-path signature")

    def check_taproot_script(self, i: int, xonly: bytes, leaf_hash: bytes, sig: bytes) -> None:
        out_key = self._output_key(i)
        leaf = _find_leaf(self.psbt.inputs[i], leaf_hash, out_key)
        if leaf is None:
            raise SignatureError(f"input {i}: signature for a leaf not committed to by the output key")
        leaf_script, leaf_version = leaf
        if b"\x20" + xonly not in leaf_script.data:
            raise SignatureError(f"input {i}: key {xonly.hex()} is not in the signed leaf script")
        sig64, digest = self._taproot_digest(i, sig, ext_flag=1, script=leaf_script, leaf_version=leaf_version)
        if not _schnorr_ok(xonly, sig64, digest):
            raise SignatureError(f"input {i}: invalid taproot script-path signature for key {xonly.hex()}")


def _schnorr_ok(xonly: bytes, sig64: bytes, digest: bytes) -> bool:
    try:
        return PublicKeyXOnly(xonly).verify(sig64, digest)
    except Exception:
        return False


def _check_sighash(i: int, got: int, wanted: int | None, allowed: set, schnorr: bool) -> None:
    if got not in allowed:
        raise SignatureError(f"input {i}: sighash type 0x{got:02x} cannot be verified on the host")
    check_sighash_policy(i, got, wanted, schnorr)


def check_sighash_policy(i: int, got: int, wanted: int | None, schnorr: bool) -> None:
    """ALL (or DEFAULT on taproot) unless the input's PSBT_IN_SIGHASH_TYPE asks for another."""
    if schnorr:
        same = {SIGHASH.DEFAULT, SIGHASH.ALL}
        ok = got in same if wanted is None else (got == wanted or {got, wanted} <= same)
    else:
        ok = got == (SIGHASH.ALL if wanted is None else wanted)
    if not ok:
        asked = "none (ALL)" if wanted is None else f"0x{wanted:02x}"
        raise SignatureError(f"input {i}: signed with sighash 0x{got:02x}, the PSBT asks for {asked}")


def _script_code(i: int, inp, spk: Script, pub: bytes) -> tuple[Script, bool]:
    """(scriptCode for the sighash, is segwit) of an ECDSA input signed by `pub`,
    after checking that `pub` is a key this input's script actually uses."""
    kind = spk.script_type()
    pkh = hashes.hash160(pub)
    if kind == "p2pkh":
        _require(spk.data[3:23] == pkh, i, pub)
        return spk, False
    if kind == "p2wpkh":
        _require(spk.data[2:22] == pkh, i, pub)
        return script.p2pkh_from_p2wpkh(spk), True
    if kind == "p2wsh":
        return _witness_script(i, inp, spk.data[2:34], pub), True
    if kind == "p2sh":
        redeem = inp.redeem_script
        if redeem is None or hashes.hash160(redeem.data) != spk.data[2:22]:
            raise SignatureError(f"input {i}: missing or wrong redeem script")
        inner = redeem.script_type()
        if inner == "p2wpkh":
            _require(redeem.data[2:22] == pkh, i, pub)
            return script.p2pkh_from_p2wpkh(redeem), True
        if inner == "p2wsh":
            return _witness_script(i, inp, redeem.data[2:34], pub), True
        _require(_pushes(redeem, pub), i, pub)
        return redeem, False
    raise SignatureError(f"input {i}: ECDSA signature on a {kind} input")


def _witness_script(i: int, inp, program: bytes, pub: bytes) -> Script:
    ws = inp.witness_script
    if ws is None or hashlib.sha256(ws.data).digest() != program:
        raise SignatureError(f"input {i}: missing or wrong witness script")
    _require(_pushes(ws, pub), i, pub)
    return ws


def _pushes(sc: Script, pub: bytes) -> bool:
    return bytes([len(pub)]) + pub in sc.data


def _require(ok: bool, i: int, pub: bytes) -> None:
    if not ok:
        raise SignatureError(f"input {i}: signature by key {pub.hex()}, which this input's script does not use")


def _find_leaf(inp, leaf_hash: bytes, out_key: bytes):
    """(script, leaf version) of the leaf with this hash whose control block
    proves it is in the output key's tree; None if there is none."""
    for control, value in inp.taproot_scripts.items():
        if not value:  # no leaf version: not a leaf
            continue
        version, leaf_script = value[-1], Script(value[:-1])
        h = taproot.leaf_hash(leaf_script.data, version)
        if h == leaf_hash and _commits(control, h, out_key):
            return leaf_script, version
    return None


def _commits(control: bytes, leaf_hash: bytes, out_key: bytes) -> bool:
    if len(control) < 33 or (len(control) - 33) % 32:
        return False
    node = leaf_hash
    for n in range(33, len(control), 32):
        sibling = control[n : n + 32]
        node = hashes.tagged_hash("TapBranch", min(node, sibling) + max(node, sibling))
    try:
        key, parity = taproot.output_key(control[1:33], node)
    except ValueError:
        return False
    return key == out_key and parity == bool(control[0] & 1)


# BIP137 header ranges: which address type a message signature claims
BIP137_HEADERS = {"p2pkh": range(31, 35), "p2sh-p2wpkh": range(35, 39), "p2wpkh": range(39, 43)}


def verify_message_signature(message: bytes, signature_b64: str, pubkey: bytes, kind: str | None = None) -> None:
    """Check a BIP137 signature by `pubkey` (and, given `kind`, that its header
    is for that address type: "p2pkh", "p2sh-p2wpkh" or "p2wpkh")."""
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except Exception:
        raise SignatureError("the message signature is not base64") from None
    if len(sig) != 65 or not 27 <= sig[0] <= 42:
        raise SignatureError("the message signature is not a 65-byte BIP137 signature")
    data = b"\x18Bitcoin Signed Message:\n" + compact.to_bytes(len(message)) + message
    digest = hashes.double_sha256(data)
    try:
        rec = PublicKey.from_signature_and_message(sig[1:] + bytes([(sig[0] - 27) & 3]), digest, hasher=None)
    except Exception:
        raise SignatureError("the message signature does not verify") from None
    compressed = sig[0] >= 31
    if rec.format(compressed=compressed) != pubkey:
        raise SignatureError("the message signature is not by the key at that path")
    if kind is not None and sig[0] not in BIP137_HEADERS[kind]:
        raise SignatureError(f"the message signature's header ({sig[0]}) is not for a {kind} address")

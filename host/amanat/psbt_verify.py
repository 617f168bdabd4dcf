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
from embit.finalizer import parse_multisig
from embit.psbt import PSBT
from embit.script import Script, Witness
from embit.transaction import SIGHASH

from . import psbt_raw, taproot
from .finalize import multi_a_keys
from .errors import PsbtError, SignatureError
from .psbt_raw import PSBT_IN_PARTIAL_SIG, PSBT_IN_TAP_KEY_SIG, is_signature_key
from .sighash import ECDSA_TYPES, SCHNORR_TYPES, SighashError, TxDigests


def verify_new_signatures(before: bytes, after: bytes) -> int:
    """Return how many signatures `after` adds to `before`, all verified.

    Raise SignatureError if anything but signatures was added, removed or
    changed, or if a new signature does not verify.
    """
    with psbt_raw.gc_paused():
        return _verify_new(before, after)


def _verify_new(before: bytes, after: bytes) -> int:
    with _as_signature_error():
        old_maps = psbt_raw.parse_maps(before, "the PSBT sent to the device")
        new_maps = psbt_raw.parse_maps(after, "the PSBT returned by the device")
    if len(old_maps.inputs) != len(new_maps.inputs) or len(old_maps.outputs) != len(new_maps.outputs):
        raise SignatureError("the device changed the number of inputs or outputs")
    try:
        # byte-equal maps but for new signature records: the same transaction
        added = _only_signatures_added(old_maps, new_maps)
    except SignatureError:
        old, _ = _parse(before, "the PSBT sent to the device")
        new, _ = _parse(after, "the PSBT returned by the device")
        _check_same_transaction(old, new)  # names the changed outpoint, amount or version if that is it
        raise
    if not added:
        return 0
    checker = SignatureChecker(new_maps)
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


class InputFields:
    """The fields of an input's raw map the checks read, by the names of
    embit's InputScope (so that script_code and final_form take either)."""

    def __init__(self, m: dict):
        self.m = m

    def _script(self, kind: int):
        v = self.m.get(bytes([kind]))
        return None if v is None else Script(v)

    @property
    def sighash_type(self):
        v = self.m.get(bytes([psbt_raw.PSBT_IN_SIGHASH_TYPE]))
        if v is not None and len(v) != 4:
            raise PsbtError("a sighash type field is not 4 bytes")
        return None if v is None else int.from_bytes(v, "little")

    @property
    def redeem_script(self):
        return self._script(psbt_raw.PSBT_IN_REDEEM_SCRIPT)

    @property
    def witness_script(self):
        return self._script(psbt_raw.PSBT_IN_WITNESS_SCRIPT)

    @property
    def final_scriptsig(self):
        return self._script(psbt_raw.PSBT_IN_FINAL_SCRIPTSIG)

    @property
    def final_scriptwitness(self):
        v = self.m.get(bytes([psbt_raw.PSBT_IN_FINAL_SCRIPTWITNESS]))
        return None if v is None else Witness.parse(v)

    @property
    def taproot_scripts(self) -> dict:
        """{control block: leaf script and leaf version}."""
        return {k[1:]: v for k, v in self.m.items() if k[0] == psbt_raw.PSBT_IN_TAP_LEAF_SCRIPT}


class Utxo:
    """An output an input spends: its amount and script (an embit Script)."""

    __slots__ = ("value", "script_pubkey")

    def __init__(self, value: int, script_pubkey: Script):
        self.value = value
        self.script_pubkey = script_pubkey


class SignatureChecker:
    """Verifies the signature records of a PSBT, read from its raw maps,
    against sighashes of the transaction it states and the outputs its
    inputs spend (sighash.TxDigests: the per-transaction hashes once)."""

    def __init__(self, maps: psbt_raw.Maps):
        self.inputs = [InputFields(m) for m in maps.inputs]
        with _as_signature_error():
            self.tx = psbt_raw.transaction_of(maps)
            spent = [psbt_raw.spent_of(maps, i, self.tx) for i in range(len(maps.inputs))]
        self.spent = [None if s is None else Utxo(s.value, Script(s.script_pubkey)) for s in spent]
        self.unknown_spent = spent.index(None) if None in spent else None  # the first input without one
        tx = self.tx
        self.digests = TxDigests(tx.version, tx.locktime, tx.outpoints, tx.sequences, tx.outputs,
                                 None if None in spent else spent)

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

    def utxo(self, i: int) -> Utxo:
        if self.spent[i] is None:
            raise SignatureError(f"input {i}: no previous output in the PSBT, cannot check its signature")
        return self.spent[i]

    # -- ECDSA (legacy, P2SH, segwit v0) --

    def check_ecdsa(self, i: int, pub: bytes, sig: bytes) -> None:
        code, segwit = script_code(i, self.inputs[i], self.utxo(i).script_pubkey, pub)
        if not self._ecdsa_ok(i, pub, sig, code, segwit):
            raise SignatureError(f"input {i}: invalid ECDSA signature for key {pub.hex()}")

    def _ecdsa_ok(self, i: int, pub: bytes, sig: bytes, code: Script, segwit: bool) -> bool:
        """Whether `sig` (DER and its sighash byte) is `pub`'s over input i with
        scriptCode `code`; a sighash type the PSBT does not allow raises."""
        if len(sig) < 9:
            raise SignatureError(f"input {i}: signature too short")
        der, sighash = sig[:-1], sig[-1]
        _check_sighash(i, sighash, self.inputs[i].sighash_type, ECDSA_TYPES, schnorr=False)
        digest = self._ecdsa_digest(i, code, segwit, sighash)
        try:
            return PublicKey(pub).verify(der, digest, hasher=None)
        except Exception:  # not strict DER, or a bad key
            return False

    def ecdsa_digest(self, i: int, pub: bytes, sighash: int) -> bytes:
        """The digest `pub` signs on input i with `sighash` (what anti-exfil's check needs)."""
        return self._ecdsa_digest(i, *script_code(i, self.inputs[i], self.utxo(i).script_pubkey, pub), sighash)

    def _ecdsa_digest(self, i: int, code: Script, segwit: bool, sighash: int) -> bytes:
        try:
            if segwit:
                return self.digests.segwit_v0(i, code.data, self.utxo(i).value, sighash)
            return self.digests.legacy(i, code.data, sighash)
        except SighashError as e:
            raise SignatureError(f"input {i}: {e}") from None

    # -- Schnorr (taproot) --

    def _taproot_digest(self, i: int, sig: bytes, **leaf) -> tuple[bytes, bytes]:
        inp = self.inputs[i]
        if len(sig) == 64:
            sighash = SIGHASH.DEFAULT
        elif len(sig) == 65 and sig[64] != SIGHASH.DEFAULT:
            sighash = sig[64]
        else:
            raise SignatureError(f"input {i}: Schnorr signature of {len(sig)} bytes")
        _check_sighash(i, sighash, inp.sighash_type, SCHNORR_TYPES, schnorr=True)
        if self.unknown_spent is not None:  # BIP341 commits to every spent output
            self.utxo(self.unknown_spent)
        try:
            digest = self.digests.taproot(i, sighash, **leaf)
        except SighashError as e:
            raise SignatureError(f"input {i}: {e}") from None
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
        leaf = _find_leaf(self.inputs[i], leaf_hash, out_key)
        if leaf is None:
            raise SignatureError(f"input {i}: signature for a leaf not committed to by the output key")
        leaf_script, leaf_version = leaf
        if b"\x20" + xonly not in leaf_script.data:
            raise SignatureError(f"input {i}: key {xonly.hex()} is not in the signed leaf script")
        sig64, digest = self._taproot_digest(i, sig, leaf_hash=leaf_hash)
        if not _schnorr_ok(xonly, sig64, digest):
            raise SignatureError(f"input {i}: invalid taproot script-path signature for key {xonly.hex()}")


    # -- final scriptSig / witness --

    def check_final(self, i: int) -> int | None:
        """Verify the signatures in input i's final scriptSig/witness: how many
        there are; None if the input is not finalized. Final fields that are
        not a form finalizers make (single-sig, CHECKMULTISIG, taproot key
        path, taproot CHECKSIG/CHECKSIGADD leaves) are refused, not passed on."""
        inp = self.inputs[i]
        if not (inp.final_scriptsig or inp.final_scriptwitness):
            return None
        try:
            final = final_form(inp)
        except Exception:
            final = None
        if final is None:
            raise PsbtError(f"input {i}: its final scriptSig/witness is not a form this host can check "
                            "(single-sig, CHECKMULTISIG or taproot)")
        form, parts = final
        kind = self.utxo(i).script_pubkey.script_type()
        if form not in FINAL_FORMS.get(kind, ()):
            raise PsbtError(f"input {i}: its final scriptSig/witness ({form}) does not fit the {kind} output it spends")
        try:
            return self._check_final(i, form, parts)
        except (SignatureError, PsbtError):
            raise
        except Exception as e:
            raise SignatureError(f"input {i}: cannot check its final signatures ({type(e).__name__}: {e})") from None

    def _check_final(self, i: int, form: str, parts: dict) -> int:
        spk = self.utxo(i).script_pubkey
        redeem = parts.get("redeem")
        if redeem is not None and hashes.hash160(redeem) != spk.data[2:22]:
            raise SignatureError(f"input {i}: its final scriptSig pushes a redeem script the output does not commit to")
        if form in ("p2pkh", "p2wpkh", "sh-wpkh"):
            sig, pub = parts["sig"], parts["pub"]
            pkh = hashes.hash160(pub)
            if form == "p2pkh":
                ok, code, segwit = spk.data[3:23] == pkh, spk, False
            else:
                program = redeem if redeem is not None else spk.data
                ok, code, segwit = program == b"\x00\x14" + pkh, script.p2pkh_from_p2wpkh(Script(program)), True
            _require(ok, i, pub)
            if not self._ecdsa_ok(i, pub, sig, code, segwit):
                raise SignatureError(f"input {i}: invalid ECDSA signature in its final fields for key {pub.hex()}")
            return 1
        if form in ("p2wsh", "sh-wsh", "p2sh"):
            ms = parts["script"]
            if form == "p2sh":
                code, segwit = ms, False  # the redeem script itself
            else:
                program = redeem if redeem is not None else spk.data
                if program != b"\x00\x20" + hashlib.sha256(ms).digest():
                    raise SignatureError(f"input {i}: its final witness script is not the one the output commits to")
                segwit = True
            return self._check_multisig(i, parts["sigs"], Script(ms), segwit)
        if "leaf" not in parts:  # taproot key path
            self.check_taproot_key(i, parts["sig"])
            return 1
        return self._check_leaf(i, parts["leaf"], parts["control"], parts["args"])

    def _check_multisig(self, i: int, sigs: list, ms: Script, segwit: bool) -> int:
        """CHECKMULTISIG: each signature by a key after the previous one's, in the script's order."""
        threshold, keys = parse_multisig(ms)
        pubs = [k.sec() for k in keys]
        if len(sigs) != threshold:
            raise SignatureError(f"input {i}: {len(sigs)} signatures in its final fields, its script needs {threshold}")
        at = 0
        for n, sig in enumerate(sigs):
            while at < len(pubs) and not self._ecdsa_ok(i, pubs[at], sig, ms, segwit):
                at += 1
            if at == len(pubs):
                raise SignatureError(f"input {i}: final signature {n + 1} is not valid for any key after the previous")
            at += 1
        return len(sigs)

    def _check_leaf(self, i: int, leaf: bytes, control: bytes, args: list) -> int:
        out_key = self._output_key(i)
        version = control[0] & 0xFE
        if not _commits(control, taproot.leaf_hash(leaf, version), out_key):
            raise SignatureError(f"input {i}: its final leaf script is not committed to by the output key")
        keys = leaf_keys(leaf)
        if keys is None or len(keys) != len(args):
            raise PsbtError(f"input {i}: its final leaf script is not a form this host can check "
                            "(CHECKSIG / CHECKSIGADD keys)")
        count = 0
        for xonly, sig in zip(keys, reversed(args)):  # the first key takes the top of the stack
            if not sig:
                continue  # a key that did not sign
            sig64, digest = self._taproot_digest(i, sig, leaf_hash=taproot.leaf_hash(leaf, version))
            if not _schnorr_ok(xonly, sig64, digest):
                raise SignatureError(f"input {i}: invalid taproot script-path signature in its final witness "
                                     f"for key {xonly.hex()}")
            count += 1
        return count


# What a final scriptSig/witness form may spend: {spent output type: forms}
FINAL_FORMS = {"p2pkh": {"p2pkh"}, "p2wpkh": {"p2wpkh"}, "p2wsh": {"p2wsh"}, "p2tr": {"p2tr"},
               "p2sh": {"p2sh", "sh-wpkh", "sh-wsh"}}


def final_form(inp):
    """(form, parts) of an input's final scriptSig and witness, the parts the
    form has ("sig", "pub", "sigs", "script", "redeem", "leaf", "control",
    "args"); None if they are not one of the forms finalizers make."""
    pushed = _push_items(inp.final_scriptsig.data) if inp.final_scriptsig else []
    wit = inp.final_scriptwitness.items if inp.final_scriptwitness else []
    if pushed is None:
        return None
    if wit:
        if len(pushed) > 1:  # P2SH-wrapped segwit: the scriptSig only pushes the redeem script
            return None
        wrap = {"redeem": pushed[0]} if pushed else {}
        if len(wit) == 2 and _is_pubkey(wit[1]):
            return ("sh-wpkh" if wrap else "p2wpkh"), dict(wrap, sig=wit[0], pub=wit[1])
        if len(wit) >= 3 and wit[0] == b"" and _is_multisig(wit[-1]):
            return ("sh-wsh" if wrap else "p2wsh"), dict(wrap, sigs=wit[1:-1], script=wit[-1])
        if wrap:
            return None
        if len(wit) == 1:  # taproot key path
            return "p2tr", {"sig": wit[0]}
        if len(wit) >= 2 and _is_control_block(wit[-1]):  # script path: args, leaf, control block
            return "p2tr", {"args": wit[:-2], "leaf": wit[-2], "control": wit[-1]}
        return None
    if len(pushed) == 2 and _is_pubkey(pushed[1]):
        return "p2pkh", {"sig": pushed[0], "pub": pushed[1]}
    if len(pushed) >= 3 and pushed[0] == b"" and _is_multisig(pushed[-1]):
        return "p2sh", {"sigs": pushed[1:-1], "script": pushed[-1], "redeem": pushed[-1]}
    return None


def leaf_keys(leaf: bytes) -> list | None:
    """The x-only keys of a `<key> CHECKSIG` leaf or a multi_a leaf, in
    order; None for any other leaf."""
    if len(leaf) == 34 and leaf[0] == 0x20 and leaf[33] == 0xAC:
        return [leaf[1:33]]
    parsed = multi_a_keys(leaf)
    return None if parsed is None else parsed[1]


def _push_items(data: bytes):
    """The items a push-only script pushes; None if it does anything else."""
    items, n = [], 0
    while n < len(data):
        op = data[n]
        n += 1
        if op <= 0x4B:
            size = op
        elif op in (0x4C, 0x4D, 0x4E):
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            size = int.from_bytes(data[n : n + width], "little")
            n += width
        else:
            return None
        if n + size > len(data):
            return None
        items.append(data[n : n + size])
        n += size
    return items


def _is_pubkey(b: bytes) -> bool:
    return len(b) == 33 and b[0] in (2, 3) or len(b) == 65 and b[0] == 4


def _is_multisig(b: bytes) -> bool:
    try:
        parse_multisig(Script(b))
        return True
    except Exception:
        return False


def _is_control_block(b: bytes) -> bool:
    return len(b) >= 33 and (len(b) - 33) % 32 == 0 and b[0] & 0xFE == 0xC0


def _schnorr_ok(xonly: bytes, sig64: bytes, digest: bytes) -> bool:
    try:
        return PublicKeyXOnly(xonly).verify(sig64, digest)
    except Exception:
        return False


def _check_sighash(i: int, got: int, wanted: int | None, allowed: set, schnorr: bool) -> None:
    if got not in allowed:
        raise SignatureError(f"input {i}: sighash type 0x{got:02x} is not a standard one")
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


def script_code(i: int, inp, spk: Script, pub: bytes) -> tuple[Script, bool]:
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

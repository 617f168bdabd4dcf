"""Check a PSBT signed by the device before handing it to a wallet.

The host does not trust the device's word that it signed what it was shown:
it checks that the device changed nothing but added signatures, and verifies
every new signature (libsecp256k1 via coincurve) against a sighash the host
computes itself. A bad signature means a broken signer, or one that signed
something other than what the officer was shown.
"""

import base64
import hashlib
from io import BytesIO

from coincurve import PublicKey, PublicKeyXOnly
from embit import compact, hashes, script
from embit.psbt import PSBT, read_string
from embit.script import Script
from embit.transaction import SIGHASH, Transaction, TransactionInput

from .errors import SignatureError

PSBT_IN_PARTIAL_SIG = 0x02
PSBT_IN_TAP_KEY_SIG = 0x13
PSBT_IN_TAP_SCRIPT_SIG = 0x14
SIG_KEYS = {PSBT_IN_PARTIAL_SIG, PSBT_IN_TAP_KEY_SIG, PSBT_IN_TAP_SCRIPT_SIG}
PSBT_IN_REQUIRED_TIME_LOCKTIME = b"\x11"
PSBT_IN_REQUIRED_HEIGHT_LOCKTIME = b"\x12"

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
    old = _parse(before, "the PSBT sent to the device")
    new = _parse(after, "the PSBT returned by the device")
    _check_same_transaction(old, new)
    old_maps = _raw_maps(before, len(old.inputs), len(old.outputs), "the PSBT sent to the device")
    new_maps = _raw_maps(after, len(new.inputs), len(new.outputs), "the PSBT returned by the device")
    added = _only_signatures_added(old_maps, new_maps)
    if not added:
        return 0
    ctx = _Context(new)
    count = 0
    for i, keys in added.items():
        for key in keys:
            ctx.check(i, key, new_maps[1][i][key])
            count += 1
    return count


def unsigned_tx(psbt: PSBT) -> Transaction:
    """The unsigned transaction exactly as the PSBT states it (parse the PSBT
    with parse_psbt to keep v0 sequences of 0).

    Not embit's `psbt.tx`: it turns a sequence of 0 into 0xFFFFFFFF and a
    version of 0 into 2, and ignores BIP370's required locktimes, so
    sighashes and final transactions would not be those the signers signed.
    """
    version = 2 if psbt.tx_version is None else psbt.tx_version
    locktime = _v2_locktime(psbt) if psbt.version == 2 else (psbt.locktime or 0)
    vin = []
    for i, inp in enumerate(psbt.inputs):
        sequence = 0xFFFFFFFF if inp.sequence is None else inp.sequence
        # PSBTv2 fields are read whatever their length, or may be missing
        if not (isinstance(inp.txid, bytes) and len(inp.txid) == 32 and _u32(inp.vout) and _u32(sequence)):
            raise SignatureError(f"input {i}: no valid outpoint or sequence in the PSBT")
        vin.append(TransactionInput(inp.txid, inp.vout, sequence=sequence))
    for j, out in enumerate(psbt.outputs):
        if not (isinstance(out.value, int) and 0 <= out.value < 2**63 and out.script_pubkey is not None):
            raise SignatureError(f"output {j}: no valid amount or script in the PSBT")
    if not (_u32(version) and _u32(locktime)):
        raise SignatureError("the PSBT's transaction version or locktime does not fit in 4 bytes")
    return Transaction(version=version, vin=vin, vout=[out.vout for out in psbt.outputs], locktime=locktime)


def _u32(v) -> bool:
    return isinstance(v, int) and 0 <= v < 2**32


def parse_psbt(raw: bytes) -> PSBT:
    """PSBT.parse, but each input of a v0 PSBT keeps the sequence its unsigned
    transaction states: embit 0.8 reads the input maps against `psbt.tx`, which
    turns a sequence of 0 into 0xFFFFFFFF. Errors are embit's."""
    psbt = PSBT.parse(raw)
    if psbt.version != 2:
        s = BytesIO(raw)
        s.read(5)
        while key := read_string(s):
            value = read_string(s)
            if key == b"\x00":  # the global unsigned transaction
                for inp, vin in zip(psbt.inputs, Transaction.parse(value).vin):
                    inp.sequence = vin.sequence
    return psbt


def _parse(raw: bytes, what: str) -> PSBT:
    try:
        return parse_psbt(raw)
    except Exception as e:
        raise SignatureError(f"{what} does not parse: {e}") from None


def _raw_maps(raw: bytes, n_in: int, n_out: int, what: str):
    """(global, [input maps], [output maps]) as {key bytes: value bytes}."""
    s = BytesIO(raw)
    s.read(5)  # magic, checked by the embit parse

    def one_map():
        m = {}
        while True:
            key = read_string(s)
            if not key:
                return m
            if key in m:
                raise SignatureError(f"{what} has a duplicated key {key.hex()}")
            m[key] = read_string(s)

    try:
        glob = one_map()
        ins = [one_map() for _ in range(n_in)]
        outs = [one_map() for _ in range(n_out)]
    except SignatureError:
        raise
    except Exception as e:
        raise SignatureError(f"{what} is truncated: {e}") from None
    if s.read(1):
        raise SignatureError(f"{what} has data after its last output")
    return glob, ins, outs


def _check_same_transaction(old: PSBT, new: PSBT) -> None:
    """Name the first input or output that differs, for a useful error."""
    if old.version != new.version:
        raise SignatureError(f"the device changed the PSBT version ({old.version} -> {new.version})")
    if len(old.inputs) != len(new.inputs) or len(old.outputs) != len(new.outputs):
        raise SignatureError("the device changed the number of inputs or outputs")
    a, b = unsigned_tx(old), unsigned_tx(new)
    for i, (x, y) in enumerate(zip(a.vin, b.vin)):
        if x.serialize() != y.serialize():
            raise SignatureError(f"input {i}: the device changed the outpoint or sequence")
    for i, (x, y) in enumerate(zip(a.vout, b.vout)):
        if x.serialize() != y.serialize():
            raise SignatureError(f"output {i}: the device changed the amount or script")
    if (a.version, a.locktime) != (b.version, b.locktime):
        raise SignatureError("the device changed the transaction version or locktime")


def _only_signatures_added(old, new) -> dict[int, list[bytes]]:
    """{input index: [keys of new signature records]}; raise on any other change."""
    (og, oi, oo), (ng, ni, no) = old, new
    if og != ng:
        raise SignatureError("the device changed the global fields of the PSBT")
    for j, (x, y) in enumerate(zip(oo, no)):
        if x != y:
            raise SignatureError(f"output {j}: the device changed its PSBT fields")
    added = {}
    for i, (x, y) in enumerate(zip(oi, ni)):
        for key, value in x.items():
            if key not in y:
                raise SignatureError(f"input {i}: the device removed field {key.hex()}")
            if y[key] != value:
                raise SignatureError(f"input {i}: the device changed field {key.hex()}")
        extra = [k for k in y if k not in x]
        for key in extra:
            if key[0] not in SIG_KEYS or not _well_formed(key):
                raise SignatureError(f"input {i}: the device added field {key.hex()}, not a signature")
        if extra:
            added[i] = extra
    return added


def _well_formed(key: bytes) -> bool:
    return {PSBT_IN_PARTIAL_SIG: len(key) in (34, 66), PSBT_IN_TAP_KEY_SIG: len(key) == 1,
            PSBT_IN_TAP_SCRIPT_SIG: len(key) == 65}[key[0]]


class _Context:
    """The transaction being signed and what its inputs spend."""

    def __init__(self, psbt: PSBT):
        self.psbt = psbt
        self.tx = unsigned_tx(psbt)
        self.spent = [_spent_output(psbt, i) for i in range(len(psbt.inputs))]

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


def _spent_output(psbt: PSBT, i: int):
    """The output input i spends, from the full previous transaction if given."""
    inp = psbt.inputs[i]
    if inp.non_witness_utxo is not None:
        prev = inp.non_witness_utxo
        if prev.txid() != inp.txid:
            raise SignatureError(f"input {i}: the previous transaction does not match the outpoint")
        if inp.vout >= len(prev.vout):
            raise SignatureError(f"input {i}: the previous transaction has no output {inp.vout}")
        out = prev.vout[inp.vout]
        if inp.witness_utxo is not None and inp.witness_utxo.serialize() != out.serialize():
            raise SignatureError(f"input {i}: witness UTXO and previous transaction disagree")
        return out
    return inp.witness_utxo


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
        h = hashes.tagged_hash("TapLeaf", bytes([version]) + leaf_script.serialize())
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
    internal = control[1:33]
    try:
        key = PublicKeyXOnly(internal)
        key.tweak_add(hashes.tagged_hash("TapTweak", internal + node))
    except ValueError:
        return False
    return key.format() == out_key and key.parity == bool(control[0] & 1)


def _v2_locktime(psbt: PSBT) -> int:
    """nLockTime of a PSBTv2 as BIP370 determines it."""
    times, heights, any_lock = [], [], False
    for inp in psbt.inputs:
        t = inp.unknown.get(PSBT_IN_REQUIRED_TIME_LOCKTIME)
        h = inp.unknown.get(PSBT_IN_REQUIRED_HEIGHT_LOCKTIME)
        if t is None and h is None:
            continue
        any_lock = True
        times.append(None if t is None else int.from_bytes(t, "little"))
        heights.append(None if h is None else int.from_bytes(h, "little"))
    if not any_lock:
        return psbt.locktime or 0
    if all(h is not None for h in heights):
        return max(heights)
    if all(t is not None for t in times):
        return max(times)
    raise SignatureError("the inputs' required locktimes cannot be satisfied together")


def verify_message_signature(message: bytes, signature_b64: str, pubkey: bytes) -> None:
    """Check a BIP137 signature (as Core's signmessage makes) by `pubkey`."""
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

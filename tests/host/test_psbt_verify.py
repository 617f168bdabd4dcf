"""Host-side verification of the signatures a device adds to a PSBT."""

import pytest
from coincurve import PublicKeyXOnly
from embit import ec, hashes, script
from embit.psbt import PSBT
from embit.script import Script, Witness
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

import fake_client as fc
from amanat import kernel, psbt_raw, psbt_tools, txbuild
from amanat.errors import SignatureError
from amanat.finalize import finalize
from amanat.psbt_raw import parse_psbt, unsigned_tx
from amanat.psbt_verify import verify_new_signatures

ROOT = fc.root_key()
KINDS = ["p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2tr"]
ACP = SIGHASH.ANYONECANPAY
TAP_KEY_SIG = fc.TAP_KEY_SIG
UNSIGNED_TX = bytes([psbt_raw.PSBT_GLOBAL_UNSIGNED_TX])
PARTIAL_SIG = bytes([psbt_raw.PSBT_IN_PARTIAL_SIG])
HEIGHT_LOCKTIME = bytes([psbt_raw.PSBT_IN_REQUIRED_HEIGHT_LOCKTIME])


def account(kind, root=ROOT):
    path = txbuild.account_path(kind, "regtest")
    return txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)


def build(kinds, version=None):
    coins = [(account(k), n, 100_000 + 1_000 * n) for n, k in enumerate(kinds)]
    pay_to = account("p2wpkh", fc.root_key(fc.OTHER_MNEMONIC)).output(0, 0)
    built = txbuild.build_spend(coins, pay_to, 50_000, 1_000, change=(account(kinds[0]), 3))
    if version == 2:
        built.psbt.version = 2
    return built


def sign(built, sighash=None):
    """(before, after) serialized: after has every input signed on the host."""
    if sighash is not None:
        for inp in built.psbt.inputs:
            inp.sighash_type = sighash
    before = built.psbt.serialize()
    psbt = PSBT.parse(before)
    assert fc.sign_psbt(psbt, ROOT, sighash) == len(psbt.inputs)
    return before, psbt.serialize()


def edit(raw, fn):
    psbt = PSBT.parse(raw)
    fn(psbt)
    return psbt.serialize()


def consensus_check(after, spent):
    """libbitcoinkernel runs the finished transaction's scripts."""
    kernel.verify_transaction(finalize(PSBT.parse(after)), spent)


@pytest.mark.parametrize("version", [None, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_valid_signature_passes(kind, version):
    built = build([kind], version)
    before, after = sign(built)
    assert PSBT.parse(after).version == version
    assert verify_new_signatures(before, after) == 1
    consensus_check(after, built.spent)


@pytest.mark.parametrize("version", [None, 2])
def test_every_input_type_in_one_psbt(version):
    built = build(KINDS, version)
    before, after = sign(built)
    assert verify_new_signatures(before, after) == 4
    consensus_check(after, built.spent)


def test_nothing_added_is_zero():
    raw = build(KINDS).psbt.serialize()
    assert verify_new_signatures(raw, raw) == 0


def _flip_first_sig(n):
    def fn(psbt):
        inp = psbt.inputs[n]
        if TAP_KEY_SIG in inp.unknown:
            inp.unknown[TAP_KEY_SIG] = fc.flip_bit(inp.unknown[TAP_KEY_SIG])
        else:
            pub = next(iter(inp.partial_sigs))
            inp.partial_sigs[pub] = fc.flip_bit(inp.partial_sigs[pub], at=-5)

    return fn


@pytest.mark.parametrize("n", range(4))
def test_flipped_bit_is_refused(n):
    before, after = sign(build(KINDS))
    with pytest.raises(SignatureError, match=f"input {n}: invalid"):
        verify_new_signatures(before, edit(after, _flip_first_sig(n)))


def test_flipped_bit_in_der_encoding_is_refused():
    before, after = sign(build(["p2wpkh"]))

    def fn(psbt):
        pub = next(iter(psbt.inputs[0].partial_sigs))
        psbt.inputs[0].partial_sigs[pub] = fc.flip_bit(psbt.inputs[0].partial_sigs[pub], at=1)

    with pytest.raises(SignatureError, match="input 0"):
        verify_new_signatures(before, edit(after, fn))


def test_ecdsa_signature_moved_to_another_input_is_refused():
    before, after = sign(build(["p2wpkh", "p2wpkh"]))

    def fn(psbt):
        psbt.inputs[1].partial_sigs = psbt.inputs[0].partial_sigs.copy()

    with pytest.raises(SignatureError, match="input 1: .*script does not use"):
        verify_new_signatures(before, edit(after, fn))


def test_ecdsa_signature_moved_with_its_key_is_refused():
    # Same key on both inputs: only the sighash tells the signatures apart.
    built = build(["p2wpkh"])
    psbt = built.psbt
    psbt.inputs.append(PSBT.parse(psbt.serialize()).inputs[0])
    psbt.inputs[1].txid = b"\x11" * 32
    psbt.inputs[1].non_witness_utxo = None
    before = psbt.serialize()
    after = PSBT.parse(before)
    fc.sign_psbt(after, ROOT)
    sig0 = next(iter(after.inputs[0].partial_sigs.items()))
    after.inputs[1].partial_sigs = dict([sig0])
    with pytest.raises(SignatureError, match="input 1: invalid ECDSA"):
        verify_new_signatures(before, after.serialize())


def test_taproot_signature_moved_to_another_input_is_refused():
    before, after = sign(build(["p2tr", "p2tr"]))

    def fn(psbt):
        psbt.inputs[1].unknown[TAP_KEY_SIG] = psbt.inputs[0].unknown[TAP_KEY_SIG]

    with pytest.raises(SignatureError, match="input 1: invalid taproot"):
        verify_new_signatures(before, edit(after, fn))


@pytest.mark.parametrize("version", [None, 2])
def test_changed_output_is_refused(version):
    before, after = sign(build(KINDS, version))

    def more(psbt):
        psbt.outputs[1].value += 1

    def elsewhere(psbt):
        psbt.outputs[0].script_pubkey = account("p2wpkh").output(0, 9)

    for fn in (more, elsewhere):
        with pytest.raises(SignatureError, match="output [01]"):
            verify_new_signatures(before, edit(after, fn))


def test_changed_output_metadata_is_refused():
    before, after = sign(build(["p2wpkh"]))

    def fn(psbt):
        psbt.outputs[1].bip32_derivations.clear()

    with pytest.raises(SignatureError, match="output 1: the device changed its PSBT fields"):
        verify_new_signatures(before, edit(after, fn))


def test_changed_input_is_refused():
    before, after = sign(build(KINDS))

    def fn(psbt):
        psbt.inputs[2].sequence = 0xFFFFFFFF

    with pytest.raises(SignatureError, match="input 2: the device changed the outpoint or sequence"):
        verify_new_signatures(before, edit(after, fn))


@pytest.mark.parametrize("n", range(4))
def test_removed_field_is_refused(n):
    before, after = sign(build(KINDS))

    def fn(psbt):
        psbt.inputs[n].bip32_derivations.clear()
        psbt.inputs[n].taproot_bip32_derivations.clear()

    with pytest.raises(SignatureError, match=f"input {n}: the device removed field"):
        verify_new_signatures(before, edit(after, fn))


def test_removed_existing_signature_is_refused():
    # A PSBT already signed on input 0 (another signer pass) goes back to the device.
    built = build(["p2wpkh", "p2tr"])
    half = PSBT.parse(built.psbt.serialize())
    fc.sign_psbt(half, ROOT)
    half.inputs[1].unknown.pop(TAP_KEY_SIG)
    before = half.serialize()
    full = PSBT.parse(before)
    fc.sign_psbt(full, ROOT)
    assert verify_new_signatures(before, full.serialize()) == 1

    full.inputs[0].partial_sigs.clear()
    with pytest.raises(SignatureError, match="input 0: the device removed field 02"):
        verify_new_signatures(before, full.serialize())


def test_added_fields_that_are_not_signatures_are_refused():
    before, after = sign(build(["p2wpkh", "p2tr"]))

    def unknown(psbt):
        psbt.inputs[0].unknown[b"\xfc\x05hello"] = b"x"

    def finalized(psbt):
        psbt.inputs[1].final_scriptwitness = Witness([psbt.inputs[1].unknown[TAP_KEY_SIG]])

    for fn, field in ((unknown, "fc"), (finalized, "08")):
        with pytest.raises(SignatureError, match=f"added field {field}.*not a signature"):
            verify_new_signatures(before, edit(after, fn))


def test_changed_global_fields_are_refused():
    before, after = sign(build(["p2wpkh"]))

    def fn(psbt):
        psbt.unknown[b"\xfc\x05other"] = b"1"

    with pytest.raises(SignatureError, match="global fields"):
        verify_new_signatures(before, edit(after, fn))


def test_trailing_data_is_refused():
    before, after = sign(build(["p2wpkh"]))
    with pytest.raises(SignatureError, match="returned by the device"):
        verify_new_signatures(before, after + b"\x00")


def test_garbage_is_refused():
    before, _ = sign(build(["p2wpkh"]))
    with pytest.raises(SignatureError, match="does not parse"):
        verify_new_signatures(before, b"psbt\xff\x01")


# Every standard sighash type, checked against consensus: the signatures are
# made over amanat.sighash's digests, and libbitcoinkernel accepts the
# transaction only if those digests are Bitcoin Core's.
TYPES = [SIGHASH.ALL, SIGHASH.NONE, SIGHASH.SINGLE, SIGHASH.ALL | ACP, SIGHASH.NONE | ACP, SIGHASH.SINGLE | ACP]
ACCEPTED = [(k, t) for k in KINDS for t in TYPES] + [("p2tr", SIGHASH.DEFAULT)]


@pytest.mark.parametrize("kind,sighash", ACCEPTED)
def test_every_sighash_type_is_verified_and_consensus_valid(kind, sighash):
    built = build([kind, kind])
    before, after = sign(built, sighash)
    assert verify_new_signatures(before, after) == 2
    consensus_check(after, built.spent)
    bad = edit(after, lambda p: _flip_first(p.inputs[1]))
    with pytest.raises(SignatureError, match="input 1: invalid"):
        verify_new_signatures(before, bad)


def _flip_first(inp):
    if inp.partial_sigs:
        pub = next(iter(inp.partial_sigs))
        inp.partial_sigs[pub] = fc.flip_bit(inp.partial_sigs[pub])
    else:
        inp.unknown[TAP_KEY_SIG] = fc.flip_bit(inp.unknown[TAP_KEY_SIG], 40)


@pytest.mark.parametrize("sighash", [SIGHASH.SINGLE, SIGHASH.SINGLE | ACP])
def test_legacy_single_without_its_output_signs_the_number_one(sighash):
    # Bitcoin Core's SIGHASH_SINGLE bug: input 2 of 3 with two outputs signs
    # the digest 1. Consensus accepts it, so the verifier must compute it.
    built = build(["p2pkh"] * 3)
    assert len(built.psbt.outputs) == 2
    before, after = sign(built, sighash)
    assert verify_new_signatures(before, after) == 3
    consensus_check(after, built.spent)


def test_a_nonstandard_sighash_byte_is_refused():
    built = build(["p2wpkh"])
    before, after = sign(built)
    def bad(p):
        pub = next(iter(p.inputs[0].partial_sigs))
        p.inputs[0].partial_sigs[pub] = p.inputs[0].partial_sigs[pub][:-1] + b"\x04"
    with pytest.raises(SignatureError, match="input 0: sighash type 0x04 is not a standard one"):
        verify_new_signatures(before, edit(after, bad))


@pytest.mark.parametrize("kind", ["p2wpkh", "p2tr"])
def test_sighash_the_psbt_did_not_ask_for_is_refused(kind):
    # SIGHASH_NONE would let anyone redirect the outputs.
    built = build([kind])
    before = built.psbt.serialize()
    psbt = PSBT.parse(before)
    fc.sign_psbt(psbt, ROOT, SIGHASH.NONE)
    with pytest.raises(SignatureError, match="input 0: signed with sighash 0x02, the PSBT asks for none"):
        verify_new_signatures(before, psbt.serialize())


# --- taproot script path (PSBT_IN_TAP_SCRIPT_SIG) ---


def script_path_psbt(internal_index=0):
    """A P2TR output with one leaf `<B> OP_CHECKSIG`, spent through the leaf."""
    internal = ROOT.derive(f"m/86h/1h/0h/0/{internal_index}").key
    signer = ROOT.derive("m/86h/1h/0h/0/8")
    leaf = Script(b"\x20" + signer.key.xonly() + b"\xac")
    leaf_hash = hashes.tagged_hash("TapLeaf", b"\xc0" + leaf.serialize())
    output_key = PublicKeyXOnly(internal.xonly())
    output_key.tweak_add(hashes.tagged_hash("TapTweak", internal.xonly() + leaf_hash))
    spk = Script(b"\x51\x20" + output_key.format())
    control = bytes([0xC0 | output_key.parity]) + internal.xonly()
    funding = Transaction(vin=[TransactionInput(b"\x42" * 32, 0)], vout=[TransactionOutput(70_000, spk)])
    pay = account("p2wpkh").output(0, 1)
    tx = Transaction(vin=[TransactionInput(funding.txid(), 0, sequence=0xFFFFFFFD)],
                     vout=[TransactionOutput(69_000, pay)])
    psbt = PSBT(tx)
    for scope in psbt.inputs + psbt.outputs:
        scope.unknown = {}
    psbt.inputs[0].witness_utxo = funding.vout[0]
    psbt.inputs[0].taproot_scripts[control] = leaf.data + b"\xc0"
    return psbt, signer, leaf, leaf_hash, control, (spk.data, 70_000)


@pytest.mark.parametrize("internal_index", [0, 1])  # output key with odd, then even y
def test_tap_script_signature_passes_and_is_consensus_valid(internal_index):
    psbt, signer, leaf, leaf_hash, control, spent = script_path_psbt(internal_index)
    before = psbt.serialize()
    h = psbt.sighash(0, sighash=SIGHASH.DEFAULT, ext_flag=1, script=leaf, leaf_version=0xC0)
    sig = signer.key.schnorr_sign(h).serialize()
    pub = ec.PublicKey.from_xonly(signer.key.xonly())
    psbt.inputs[0].taproot_sigs[(pub, leaf_hash)] = sig
    assert verify_new_signatures(before, psbt.serialize()) == 1

    tx = psbt.tx
    tx.vin[0].witness = Witness([sig, leaf.data, control])
    kernel.verify_transaction(tx.serialize(), [spent])

    psbt.inputs[0].taproot_sigs[(pub, leaf_hash)] = fc.flip_bit(sig)
    with pytest.raises(SignatureError, match="input 0: invalid taproot script-path"):
        verify_new_signatures(before, psbt.serialize())


def test_tap_script_signature_for_a_leaf_not_in_the_output_is_refused():
    psbt, signer, leaf, leaf_hash, control, _ = script_path_psbt()
    bad_control = control[:1] + ROOT.derive("m/0/1").key.xonly()
    psbt.inputs[0].taproot_scripts = {bad_control: leaf.data + b"\xc0"}
    before = psbt.serialize()
    h = psbt.sighash(0, sighash=SIGHASH.DEFAULT, ext_flag=1, script=leaf, leaf_version=0xC0)
    pub = ec.PublicKey.from_xonly(signer.key.xonly())
    psbt.inputs[0].taproot_sigs[(pub, leaf_hash)] = signer.key.schnorr_sign(h).serialize()
    with pytest.raises(SignatureError, match="not committed to by the output key"):
        verify_new_signatures(before, psbt.serialize())


def test_psbt_v2_locktime_comes_from_the_inputs():
    # BIP370: an input's required height locktime overrides the fallback locktime.
    built = build(["p2wpkh", "p2tr"], version=2)
    built.psbt.locktime = 0
    built.psbt.inputs[1].unknown[HEIGHT_LOCKTIME] = (500).to_bytes(4, "little")
    before = built.psbt.serialize()

    def signed_with_locktime(locktime):
        psbt = PSBT.parse(before)
        required = psbt.inputs[1].unknown.pop(HEIGHT_LOCKTIME)
        psbt.locktime = locktime  # signed over this nLockTime
        fc.sign_psbt(psbt, ROOT)
        psbt.inputs[1].unknown[HEIGHT_LOCKTIME] = required
        psbt.locktime = 0
        return psbt.serialize()

    assert verify_new_signatures(before, signed_with_locktime(500)) == 2
    with pytest.raises(SignatureError, match="input 0: invalid"):
        verify_new_signatures(before, signed_with_locktime(0))


def test_psbt_v2_required_locktime_is_the_final_transactions():
    # Signed over nLockTime 500, which the input requires: the final
    # transaction must carry it, or its signatures do not verify.
    built = build(["p2wpkh", "p2wpkh"], version=2)
    built.psbt.locktime = 0
    built.psbt.inputs[1].unknown[HEIGHT_LOCKTIME] = (500).to_bytes(4, "little")
    psbt = PSBT.parse(built.psbt.serialize())
    psbt.locktime = 500
    fc.sign_psbt(psbt, ROOT)
    psbt.locktime = 0
    signed = psbt.serialize()
    final = psbt_tools.finalize(signed)
    assert final.checked and Transaction.parse(final.tx).locktime == 500
    assert psbt_tools.extract(final.psbt).tx == final.tx
    tx = finalize(PSBT.parse(signed))
    assert Transaction.parse(tx).locktime == 500
    kernel.verify_transaction(tx, built.spent)


def test_sequence_zero_is_what_the_device_signs():
    built = build(["p2wpkh"])
    _, maps = psbt_raw.parse(built.psbt.serialize())
    unsigned = Transaction.parse(maps.glob[UNSIGNED_TX])
    unsigned.vin[0].sequence = 0  # embit 0.8 would write and read it as 0xFFFFFFFF
    unsigned.locktime = 700_000
    maps.glob[UNSIGNED_TX] = unsigned.serialize()
    before = maps.serialize()
    tx = unsigned_tx(parse_psbt(before))
    assert tx.serialize() == unsigned.serialize()
    inp = built.psbt.inputs[0]
    pub, der = next(iter(inp.bip32_derivations.items()))
    code = script.p2pkh_from_p2wpkh(inp.witness_utxo.script_pubkey)
    digest = unsigned.sighash_segwit(0, code, inp.witness_utxo.value, SIGHASH.ALL)
    maps.inputs[0][PARTIAL_SIG + pub.sec()] = ROOT.derive(der.derivation).key.sign(digest).serialize() + b"\x01"
    after = maps.serialize()
    assert verify_new_signatures(before, after) == 1
    final = psbt_tools.finalize(after)
    assert final.checked
    got = Transaction.parse(final.tx)
    assert got.vin[0].sequence == 0 and got.locktime == 700_000
    kernel.verify_transaction(final.tx, built.spent)


@pytest.mark.parametrize("kind", KINDS)
def test_single_sig_final_fields_follow_the_sighash_rule(kind):
    built = build([kind])
    _, after = sign(built, SIGHASH.NONE)
    final = psbt_tools.finalize(after)  # asked for by the PSBT
    assert final.checked
    # finalizing cleared PSBT_IN_SIGHASH_TYPE: nothing asks for NONE any more
    with pytest.raises(SignatureError, match="input 0: signed with sighash 0x02"):
        psbt_tools.finalize(final.psbt)
    _, after = sign(build([kind]))
    assert psbt_tools.finalize(psbt_tools.finalize(after).psbt).checked


def test_a_final_witness_with_sighash_none_acp_is_refused():
    built = build(["p2wpkh"])
    psbt = PSBT.parse(built.psbt.serialize())
    fc.sign_psbt(psbt, ROOT, SIGHASH.NONE | ACP)
    pub, sig = next(iter(psbt.inputs[0].partial_sigs.items()))
    psbt.inputs[0].partial_sigs.clear()
    psbt.inputs[0].final_scriptwitness = Witness([sig, pub.sec()])
    with pytest.raises(SignatureError, match="input 0: signed with sighash 0x82, the PSBT asks for none"):
        psbt_tools.finalize(psbt.serialize())
    psbt.inputs[0].sighash_type = SIGHASH.NONE | ACP  # asked for: the final signature verifies
    assert psbt_tools.verify_all_signatures(psbt.serialize()) == 1
    psbt.inputs[0].witness_utxo = psbt.inputs[0].non_witness_utxo = None  # nothing to check it against
    with pytest.raises(SignatureError, match="input 0: no previous output in the PSBT, cannot check"):
        psbt_tools.verify_all_signatures(psbt.serialize())

"""Review and streaming signer on the MicroPython VM with the device crypto, checked by libbitcoinkernel.

PSBTs (v0 and v2) are built on the host (embit on CPython, libsecp256k1),
reviewed and signed by the firmware under the real `micropython` binary,
finalized on the host, and every input is run through Bitcoin Core's script
interpreter.
"""

import pytest
from embit import bip32, bip39, ec, script
from embit.networks import NETWORKS
from embit.psbt import PSBT
from embit.transaction import Transaction
from embit.util import secp256k1

from amanat import finalize, inprocess, kernel, txbuild
from psbt_scopes import join_scopes, split_scopes

MNEMONIC = "all all all all all all all all all all all all"
NETWORK = "test"
KINDS = list(txbuild.PURPOSE)


@pytest.fixture(scope="module")
def accounts():
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NETWORKS[NETWORK]["xprv"])
    out = {}
    for kind in KINDS:
        path = txbuild.account_path(kind, NETWORK)
        out[kind] = txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)
    return out


@pytest.fixture(scope="module")
def foreign():
    root = bip32.HDKey.from_seed(bytes(range(64)), version=NETWORKS[NETWORK]["xprv"])
    path = txbuild.account_path("p2wpkh", NETWORK)
    return root, txbuild.Account("p2wpkh", root.derive(path).to_public(), root.my_fingerprint, path)


def payee():
    return script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())


def sign_and_check(built, raw=None):
    signed, count = inprocess.sign(raw or built.psbt.serialize(), MNEMONIC, network=NETWORK)
    psbt = PSBT.parse(signed)
    tx = finalize.finalize(psbt)
    kernel.verify_transaction(tx, built.spent)
    return signed, count, tx


# --- raw PSBT scopes, to check byte-level preservation and to craft odd PSBTs


@pytest.mark.parametrize("version", [0, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_single_input_type(accounts, kind, version):
    acct = accounts[kind]
    built = txbuild.build_spend([(acct, 3, 50_000)], payee(), 30_000, 500, change=(acct, 1), version=version)
    signed, count, _ = sign_and_check(built)
    assert count == 1
    psbt = PSBT.parse(signed)
    assert (psbt.version or 0) == version
    inp = psbt.inputs[0]
    if kind == "p2tr":
        # BIP371: the key-path signature is left in PSBT_IN_TAP_KEY_SIG, not finalized
        assert len(inp.unknown[b"\x13"]) == 64
        assert not inp.final_scriptwitness
        assert inp.taproot_internal_key is not None
    else:
        [sig] = inp.partial_sigs.values()
        assert sig[-1] == 1 and len(sig) <= 71  # SIGHASH_ALL, low R


@pytest.mark.parametrize("version", [0, 2])
def test_mixed_inputs_with_foreign_input(accounts, foreign, version):
    """All four types in one transaction; an input of another wallet is left untouched."""
    other_root, other = foreign
    coins = [(accounts[k], i, 20_000 + i) for i, k in enumerate(KINDS)]
    coins.append((other, 0, 10_000))
    built = txbuild.build_spend(coins, payee(), 60_000, 1_000, change=(accounts["p2wpkh"], 2), version=version)
    out = inprocess.sign_with_review(built.psbt.serialize(), MNEMONIC, network=NETWORK)
    assert out["count"] == 4
    assert out["review"]["signing"] == 4
    assert out["progress"] == [[i, 5] for i in range(1, 6)]
    psbt = PSBT.parse(out["psbt"])
    assert (psbt.version or 0) == version
    assert not psbt.inputs[4].partial_sigs
    assert split_scopes(out["psbt"])[5] == split_scopes(built.psbt.serialize())[5]
    # the foreign owner signs too; then the whole transaction must be valid
    psbt.sign_with(other_root)
    tx = finalize.finalize(psbt)
    kernel.verify_transaction(tx, built.spent)


@pytest.mark.parametrize("version", [0, 2])
def test_unknown_and_proprietary_fields_kept(accounts, version):
    """The signed PSBT is the original, byte for byte, plus the signatures."""
    built = txbuild.build_spend(
        [(accounts["p2wpkh"], 0, 40_000), (accounts["p2tr"], 0, 40_000)],
        payee(),
        50_000,
        700,
        change=(accounts["p2tr"], 4),
        version=version,
    )
    psbt = built.psbt
    psbt.unknown[b"\xfc\x06amanat\x00"] = b"global"
    psbt.inputs[0].unknown[b"\xfc\x06amanat\x01"] = b"input"
    psbt.inputs[1].unknown[b"\x0a" + bytes(20)] = b"preimage, a key embit does not parse"
    psbt.outputs[1].unknown[b"\xfc\x06amanat\x02"] = b"output"
    raw = psbt.serialize()
    signed, count, _ = sign_and_check(built, raw)
    assert count == 2
    before, after = split_scopes(raw), split_scopes(signed)
    assert len(before) == len(after) == 1 + 2 + 2
    assert after[0] == before[0]
    assert after[3:] == before[3:]
    for i, kinds in ((1, {0x02}), (2, {0x13})):
        assert after[i][: len(before[i])] == before[i]
        assert {k[0] for k, _ in after[i][len(before[i]) :]} == kinds
    parsed = PSBT.parse(signed)
    assert parsed.unknown[b"\xfc\x06amanat\x00"] == b"global"
    assert parsed.inputs[0].unknown[b"\xfc\x06amanat\x01"] == b"input"
    assert parsed.outputs[1].unknown[b"\xfc\x06amanat\x02"] == b"output"


def test_taproot_signature_verifies_with_fresh_randomness(accounts):
    """BIP340 over the BIP341 sighash with the BIP86-tweaked key, made with
    auxiliary randomness: not the signature without it, nor with zeros."""
    built = txbuild.build_spend(
        [(accounts["p2tr"], 7, 30_000), (accounts["p2wpkh"], 7, 30_000)], payee(), 50_000, 600,
        change=(accounts["p2wpkh"], 7),
    )
    raw = built.psbt.serialize()
    signed, _ = inprocess.sign(raw, MNEMONIC, network=NETWORK)
    sig = PSBT.parse(signed).inputs[0].unknown[b"\x13"]
    pub, path = accounts["p2tr"].key(0, 7)
    output_key = pub.taproot_tweak(b"")
    h = PSBT.parse(raw).sighash(0, sighash=0)
    assert output_key.schnorr_verify(ec.SchnorrSig.parse(sig), h)
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC))
    secret = root.derive(path).key.taproot_tweak(b"").secret
    for aux in (None, bytes(32)):
        assert sig != secp256k1.schnorrsig_sign(h, secret, None, aux)


def test_taproot_sighash_all_is_explicit(accounts):
    built = txbuild.build_spend([(accounts["p2tr"], 2, 30_000)], payee(), 20_000, 400, change=(accounts["p2tr"], 2))
    built.psbt.inputs[0].sighash_type = 1
    signed, _, _ = sign_and_check(built)
    sig = PSBT.parse(signed).inputs[0].unknown[b"\x13"]
    assert len(sig) == 65 and sig[-1] == 1


def test_signing_again_replaces_the_old_signatures(accounts):
    """Signatures already there for our keys (here: wrong ones) are replaced,
    never duplicated."""
    built = txbuild.build_spend(
        [(accounts["p2sh-p2wpkh"], 1, 30_000), (accounts["p2tr"], 1, 30_000)], payee(), 50_000, 600,
        change=(accounts["p2tr"], 1),
    )
    [pub] = built.psbt.inputs[0].bip32_derivations
    built.psbt.inputs[0].partial_sigs[pub] = bytes(70) + b"\x01"
    built.psbt.inputs[1].unknown[b"\x13"] = bytes(64)
    signed, count, _ = sign_and_check(built)
    assert count == 2
    for scope in split_scopes(signed):
        keys = [k for k, _ in scope]
        assert len(keys) == len(set(keys))


def test_v2_amount_key_with_key_data_is_refused(accounts):
    """A key 0x03<data> placed before PSBT_OUT_AMOUNT (which has no key data)
    is malformed: embit's PSBTView matches key prefixes and would read it as
    the amount, so the device refuses the PSBT."""
    built = txbuild.build_spend([(accounts["p2wpkh"], 5, 50_000)], payee(), 30_000, 500,
                                change=(accounts["p2wpkh"], 5), version=2)
    scopes = split_scopes(built.psbt.serialize())
    out0 = scopes[2]
    out0.insert(0, (b"\x03\x00", (1_000).to_bytes(8, "little")))
    raw = join_scopes(scopes)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        inprocess.sign_with_review(raw, MNEMONIC, network=NETWORK)
    assert e.value.name == "BAD_PSBT" and "output 0: key 0300" in e.value.message


def test_v2_required_height_locktime(accounts):
    """BIP370: an input's required height locktime sets nLockTime, not the fallback."""
    built = txbuild.build_spend([(accounts["p2wpkh"], 6, 50_000)], payee(), 30_000, 500,
                                change=(accounts["p2wpkh"], 6), version=2)
    built.psbt.inputs[0].unknown[b"\x12"] = (800_000).to_bytes(4, "little")
    out = inprocess.sign_with_review(built.psbt.serialize(), MNEMONIC, network=NETWORK)
    assert out["review"]["locktime"] == 800_000
    assert "locktime set: not valid before block 800000" in out["review"]["warnings"]
    psbt = PSBT.parse(out["psbt"])
    psbt.locktime = 800_000  # embit's finalizer knows only the fallback locktime
    kernel.verify_transaction(finalize.finalize(psbt), built.spent)


def test_kernel_rejects_a_forged_signature(accounts):
    """The script check is real: a signature from the wrong key fails it."""
    acct = accounts["p2wpkh"]
    built = txbuild.build_spend([(acct, 0, 40_000)], payee(), 30_000, 500, change=(acct, 0))
    signed, _, tx = sign_and_check(built)
    psbt = PSBT.parse(signed)
    [(pub, sig)] = psbt.inputs[0].partial_sigs.items()
    # replace with a valid-looking signature by another key over the same sighash
    other = bip32.HDKey.from_seed(bytes(64)).key
    psbt.inputs[0].partial_sigs[pub] = other.sign(psbt.sighash(0)).serialize() + b"\x01"
    with pytest.raises(kernel.ScriptCheckError):
        kernel.verify_transaction(finalize.finalize(psbt), built.spent)


def test_refuses_psbt_with_no_input_of_ours(foreign):
    _, other = foreign
    built = txbuild.build_spend([(other, 0, 10_000)], payee(), 5_000, 500)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        inprocess.sign(built.psbt.serialize(), MNEMONIC, network=NETWORK)
    assert e.value.name == "REFUSED" and e.value.code == 9
    assert e.value.message == "no input of this PSBT belongs to this device"


def test_device_xpubs_match_libsecp256k1(accounts):
    paths = [a.path for a in accounts.values()]
    dev = inprocess.xpubs(MNEMONIC, paths, network=NETWORK)
    for acct in accounts.values():
        assert dev["xpubs"][acct.path] == acct.xpub.to_base58()
    assert dev["fingerprint"] == accounts["p2wpkh"].fingerprint.hex()


@pytest.mark.parametrize("version", [0, 2])
def test_sequence_zero_and_a_locktime(accounts, version):
    """nSequence 0 is signed as 0 (embit's PSBT object would turn it into
    0xffffffff): the host keeps it exactly and the kernel accepts."""
    from amanat import psbt_raw, psbt_verify

    acct = accounts["p2wpkh"]
    built = txbuild.build_spend([(acct, 8, 50_000)], payee(), 30_000, 500, change=(acct, 8), version=version)
    scopes = split_scopes(built.psbt.serialize())
    if version == 0:
        # edit the global unsigned transaction itself: embit's serializer
        # would write a sequence of 0 back as 0xffffffff
        [(key, value)] = [(k, v) for k, v in scopes[0] if k == b"\x00"]
        tx = Transaction.parse(value)
        tx.vin[0].sequence = 0
        tx.locktime = 700_000
        scopes[0] = [(k, tx.serialize() if k == b"\x00" else v) for k, v in scopes[0]]
        raw = join_scopes(scopes)
    else:
        scopes[1] = [(k, v) for k, v in scopes[1] if k != b"\x10"] + [(b"\x10", bytes(4))]
        scopes[0] = [(k, v) for k, v in scopes[0] if k != b"\x03"] + [(b"\x03", (700_000).to_bytes(4, "little"))]
        raw = join_scopes(scopes)
    signed, count = inprocess.sign(raw, MNEMONIC, network=NETWORK)
    assert psbt_verify.verify_new_signatures(raw, signed) == 1
    tx = finalize.finalize(psbt_raw.parse_psbt(signed))
    final = Transaction.parse(tx)
    assert final.vin[0].sequence == 0 and final.locktime == 700_000
    kernel.verify_transaction(tx, built.spent)


def test_a_v2_signer_clears_the_modifiable_flags(accounts):
    """BIP370: signing with SIGHASH_ALL clears the Inputs and Outputs
    Modifiable flags (bits 0 and 1); the host accepts exactly that change, and
    a combiner keeps what a signer cleared."""
    from amanat import psbt_tools, psbt_verify
    from amanat.errors import SignatureError

    acct = accounts["p2wpkh"]
    built = txbuild.build_spend([(acct, 2, 70_000)], payee(), 50_000, 600, change=(acct, 1), version=2)
    scopes = split_scopes(built.psbt.serialize())
    scopes[0].append((b"\x06", b"\x07"))  # inputs and outputs modifiable, has SIGHASH_SINGLE
    raw = join_scopes(scopes)
    signed, count, _ = sign_and_check(built, raw)
    assert dict(split_scopes(signed)[0])[b"\x06"] == b"\x04"
    assert psbt_verify.verify_new_signatures(raw, signed) == count == 1
    for wrong in (b"\x07", b"\x00", b"\x05"):  # left set, SIGHASH_SINGLE dropped, one flag kept
        forged = split_scopes(signed)
        forged[0] = [(k, wrong if k == b"\x06" else v) for k, v in forged[0]]
        with pytest.raises(SignatureError, match="global fields"):
            psbt_verify.verify_new_signatures(raw, join_scopes(forged))
    merged = psbt_tools.combine([raw, signed])
    assert dict(split_scopes(merged)[0])[b"\x06"] == b"\x04"

"""amanat.psbt_tools and `amanat psbt`: combine, finalize and extract multisig PSBTs
signed by separate cosigners (here: embit with the cosigners' private keys)."""

import base64
import json

import pytest
from click.testing import CliRunner
from coincurve import PublicKeyXOnly
from embit import hashes, script
from embit.descriptor import Descriptor
from embit.psbt import PSBT, DerivationPath
from embit.script import Script, Witness
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

import fake_client as fc
from amanat import cli, kernel, policy, psbt_raw, psbt_tools, txbuild
from amanat.errors import PsbtError, SignatureError

ROOTS = [fc.root_key(), fc.root_key(fc.OTHER_MNEMONIC), fc.root_key("zoo " * 11 + "wrong")]
PATH = "m/48h/1h/0h/2h"
NUMS = policy.NUMS
FORMS = {
    "wsh": "wsh(sortedmulti(2,{}))",
    "sh-wsh": "sh(wsh(multi(2,{})))",
    "sh": "sh(sortedmulti(2,{}))",
    "tr": f"tr({NUMS},sortedmulti_a(2,{{}}))",
}
UNSIGNED_TX = bytes([psbt_raw.PSBT_GLOBAL_UNSIGNED_TX])
PAY_TO = script.p2wpkh(fc.root_key(fc.OTHER_MNEMONIC).derive("m/84h/1h/0h/0/0").key)


def wallet(form):
    keys = ",".join(f"[{r.my_fingerprint.hex()}/{PATH[2:]}]{r.derive(PATH).to_public().to_base58()}/<0;1>/*"
                    for r in ROOTS)
    return FORMS[form].format(keys)


def describe(inp, desc: str, change: int, index: int) -> None:
    """The fields a cosigner needs to sign input `inp` of the wallet at (change, index)."""
    d = Descriptor.from_string(desc).derive(index, branch_index=change)
    for k in policy.parse(desc).keys:
        pub = k.pubkey(index, change)
        der = DerivationPath(k.fingerprint, list(k.origin) + [change, index])
        if desc.startswith("tr("):
            leaf = d.taptree.tree.miniscript.compile()
            leaf_hash = hashes.tagged_hash("TapLeaf", b"\xc0" + Script(leaf).serialize())
            inp.taproot_bip32_derivations[pub] = ([leaf_hash], der)
        else:
            inp.bip32_derivations[pub] = der
    if desc.startswith("tr("):
        internal = bytes.fromhex(NUMS)
        out = PublicKeyXOnly(internal)
        out.tweak_add(hashes.tagged_hash("TapTweak", internal + leaf_hash))
        inp.taproot_internal_key = policy.parse_key(NUMS).pubkey()
        inp.taproot_scripts[bytes([0xC0 | out.parity]) + internal] = leaf + b"\xc0"
    else:
        inp.witness_script = d.witness_script()
        inp.redeem_script = d.redeem_script()


def unsigned(form="wsh", amounts=(60_000, 50_000), pay=70_000, fee=2_000, tag=7) -> tuple[bytes, list]:
    """A PSBT spending one coin per amount of the 2-of-3 wallet, with change; and the funding txs."""
    desc = wallet(form)
    ms = policy.parse(desc)
    funding = [Transaction(version=2, vin=[TransactionInput((tag * 100 + n).to_bytes(32, "little"), 0)],
                           vout=[TransactionOutput(a, ms.script_pubkey(n))], locktime=0)
               for n, a in enumerate(amounts)]
    vin = [TransactionInput(f.txid(), 0, sequence=0xFFFFFFFD) for f in funding]
    vout = [TransactionOutput(pay, PAY_TO), TransactionOutput(sum(amounts) - pay - fee, ms.script_pubkey(0, True))]
    psbt = PSBT(Transaction(version=2, vin=vin, vout=vout, locktime=0), {})
    for n, (inp, f) in enumerate(zip(psbt.inputs, funding)):
        inp.unknown = {}
        if form != "sh":  # legacy P2SH: no witness UTXO (signers would use the segwit sighash)
            inp.witness_utxo = f.vout[0]
        if form != "tr":
            inp.non_witness_utxo = f
        describe(inp, desc, 0, n)
    for out in psbt.outputs:
        out.unknown = {}
    return psbt.serialize(), funding


def signed_by(raw: bytes, root) -> bytes:
    psbt = PSBT.parse(raw)
    assert psbt.sign_with(root) == len(psbt.inputs)
    return psbt.serialize()


def spent(funding):
    return [(f.vout[0].script_pubkey.data, f.vout[0].value) for f in funding]


@pytest.mark.parametrize("form", list(FORMS))
def test_combine_finalize_extract(form):
    raw, funding = unsigned(form)
    a, b = signed_by(raw, ROOTS[0]), signed_by(raw, ROOTS[2])
    both = psbt_tools.combine([a, b])
    assert psbt_tools.combine([b, a]) != raw and psbt_tools.verify_all_signatures(both) == 4
    final = psbt_tools.finalize(both)
    assert final.signatures == 4 and final.checked
    kernel.verify_transaction(final.tx, spent(funding))
    ex = psbt_tools.extract(final.psbt)
    assert ex.tx == final.tx and ex.checked and ex.unknown_inputs == []
    assert ex.txid == Transaction.parse(final.tx).txid().hex()
    if not form.startswith("sh"):  # no scriptSig: the txid is the unsigned transaction's
        assert ex.txid == PSBT.parse(raw).tx.txid().hex()
    assert psbt_tools.finalize(psbt_tools.combine([b, a])).tx == final.tx


def test_the_finalized_psbt_keeps_only_what_a_finalizer_keeps():
    raw, _ = unsigned("sh-wsh")
    final = PSBT.parse(psbt_tools.finalize(psbt_tools.combine([signed_by(raw, r) for r in ROOTS])).psbt)
    for inp in final.inputs:
        assert inp.final_scriptwitness and inp.final_scriptsig  # P2SH-P2WSH: both
        assert not inp.partial_sigs and not inp.bip32_derivations and inp.witness_script is None
        assert inp.witness_utxo is not None and inp.non_witness_utxo is not None  # UTXOs stay


def test_the_finalizer_clears_musig2_fields_and_keeps_unknown_ones():
    raw, _ = unsigned("wsh")
    _, maps = psbt_raw.parse(psbt_tools.combine([signed_by(raw, r) for r in ROOTS[:2]]))
    musig = bytes([psbt_raw.PSBT_IN_MUSIG2_PARTIAL_SIG]) + b"\x02" * 66
    unknown = bytes([0x19])  # no BIP assigns it
    maps.inputs[0].update({musig: b"\x01" * 32, unknown: b"kept"})
    _, final = psbt_raw.parse(psbt_tools.finalize(maps.serialize()).psbt)
    assert musig not in final.inputs[0] and final.inputs[0][unknown] == b"kept"


def test_three_of_three_signatures_finalize_with_two():
    raw, funding = unsigned("tr")
    final = psbt_tools.finalize(psbt_tools.combine([signed_by(raw, r) for r in ROOTS]))
    assert final.signatures == 6 and final.checked


def test_one_signature_is_not_enough():
    raw, _ = unsigned()
    with pytest.raises(PsbtError, match="cannot finalize"):
        psbt_tools.finalize(signed_by(raw, ROOTS[0]))


def test_combine_refuses_another_transaction():
    raw, _ = unsigned()
    other, _ = unsigned(pay=71_000)
    with pytest.raises(PsbtError, match="PSBT 2 is for a different transaction"):
        psbt_tools.combine([signed_by(raw, ROOTS[0]), signed_by(other, ROOTS[1])])


def test_combine_refuses_conflicting_fields():
    raw, _ = unsigned()
    a = PSBT.parse(signed_by(raw, ROOTS[0]))
    b = PSBT.parse(signed_by(raw, ROOTS[0]))
    pub = next(iter(b.inputs[1].partial_sigs))
    b.inputs[1].partial_sigs[pub] = fc.flip_bit(b.inputs[1].partial_sigs[pub], at=-5)
    with pytest.raises(PsbtError, match="PSBT 2: input 1 field 02"):
        psbt_tools.combine([a.serialize(), b.serialize()])


def test_combine_refuses_what_does_not_parse():
    raw, _ = unsigned()
    with pytest.raises(PsbtError, match="PSBT 2 does not parse"):
        psbt_tools.combine([raw, raw[:-3]])


@pytest.mark.parametrize("form", ["wsh", "tr"])
def test_a_bad_signature_is_refused(form):
    raw, _ = unsigned(form)
    good = PSBT.parse(signed_by(raw, ROOTS[1]))
    inp = good.inputs[0]
    if form == "tr":
        k = next(iter(inp.taproot_sigs))
        inp.taproot_sigs[k] = fc.flip_bit(inp.taproot_sigs[k])
    else:
        k = next(iter(inp.partial_sigs))
        inp.partial_sigs[k] = fc.flip_bit(inp.partial_sigs[k], at=-5)
    both = psbt_tools.combine([signed_by(raw, ROOTS[0]), good.serialize()])
    with pytest.raises(SignatureError, match="input 0: invalid"):
        psbt_tools.verify_all_signatures(both)
    with pytest.raises(SignatureError):
        psbt_tools.finalize(both)


def test_taproot_key_path_signatures_are_verified_too():
    path = txbuild.account_path("p2tr", "regtest")
    acct = txbuild.Account("p2tr", ROOTS[0].derive(path).to_public(), ROOTS[0].my_fingerprint, path)
    built = txbuild.build_spend([(acct, 0, 50_000)], PAY_TO, 30_000, 1_000, change=(acct, 0))
    assert fc.sign_psbt(built.psbt, ROOTS[0]) == 1
    assert psbt_tools.verify_all_signatures(built.psbt.serialize()) == 1
    sig = built.psbt.inputs[0].unknown[fc.TAP_KEY_SIG]
    built.psbt.inputs[0].unknown[fc.TAP_KEY_SIG] = fc.flip_bit(sig)
    with pytest.raises(SignatureError, match="taproot key-path"):
        psbt_tools.verify_all_signatures(built.psbt.serialize())


def test_extract_needs_a_finalized_psbt():
    raw, _ = unsigned()
    with pytest.raises(PsbtError, match="input 0 is not finalized"):
        psbt_tools.extract(psbt_tools.combine([signed_by(raw, r) for r in ROOTS[:2]]))


def test_extract_checks_only_what_it_can_and_takes_previous_transactions():
    raw, funding = unsigned()
    final = PSBT.parse(psbt_tools.finalize(psbt_tools.combine([signed_by(raw, r) for r in ROOTS[:2]])).psbt)
    final.inputs[1].witness_utxo = final.inputs[1].non_witness_utxo = None
    ex = psbt_tools.extract(final.serialize())
    assert not ex.checked and ex.unknown_inputs == [1]
    ex = psbt_tools.extract(final.serialize(), [funding[1].serialize()])
    assert ex.checked and ex.unknown_inputs == []


def test_extract_refuses_a_transaction_the_kernel_refuses():
    raw, _ = unsigned()
    final = PSBT.parse(psbt_tools.finalize(psbt_tools.combine([signed_by(raw, r) for r in ROOTS[:2]])).psbt)
    items = final.inputs[0].final_scriptwitness.items
    items[1] = fc.flip_bit(items[1], at=-5)
    with pytest.raises(SignatureError, match="does not verify: input 0"):
        psbt_tools.extract(final.serialize())


# ---------------------------------------------------------------- `amanat psbt`


def amanat(*argv, code=0):
    result = CliRunner().invoke(cli.main, list(argv))
    assert result.exit_code == code, (result.output, result.exception)
    return result.stdout if code == 0 else result.output


def test_cli_combine_finalize_extract(tmp_path):
    raw, funding = unsigned("tr")
    (tmp_path / "a.psbt").write_bytes(signed_by(raw, ROOTS[0]))
    (tmp_path / "b.psbt").write_bytes(base64.b64encode(signed_by(raw, ROOTS[1])))
    amanat("psbt", "combine", str(tmp_path / "a.psbt"), str(tmp_path / "b.psbt"), "-o", str(tmp_path / "ab.psbt"))
    out = json.loads(amanat("psbt", "finalize", str(tmp_path / "ab.psbt"), "-o", str(tmp_path / "f.psbt"),
                            "--base64", "--json"))
    assert out["signatures"] == 4 and out["verified"]
    got = json.loads(amanat("psbt", "extract", str(tmp_path / "f.psbt"), "-o", str(tmp_path / "tx.hex"), "--json"))
    tx = bytes.fromhex((tmp_path / "tx.hex").read_text().strip())
    assert got["txid"] == out["txid"] == Transaction.parse(tx).txid().hex() and got["verified"]
    kernel.verify_transaction(tx, spent(funding))
    assert amanat("psbt", "extract", str(tmp_path / "f.psbt")).strip() == tx.hex()


def test_cli_stdout_and_spent_from(tmp_path):
    raw, funding = unsigned()
    (tmp_path / "a.psbt").write_bytes(signed_by(raw, ROOTS[0]))
    (tmp_path / "c.psbt").write_bytes(signed_by(raw, ROOTS[2]))
    b64 = amanat("psbt", "combine", str(tmp_path / "a.psbt"), str(tmp_path / "c.psbt"), "-o", "-")
    (tmp_path / "ac.psbt").write_text(b64)
    final = PSBT.parse(base64.b64decode(amanat("psbt", "finalize", str(tmp_path / "ac.psbt"), "-o", "-")))
    # -o - with --json: stdout is one JSON document, the PSBT inside it
    merged = json.loads(amanat("psbt", "combine", str(tmp_path / "a.psbt"), str(tmp_path / "c.psbt"), "-o", "-",
                               "--json"))
    assert base64.b64decode(merged["psbt"]) == base64.b64decode(b64)
    done = json.loads(amanat("psbt", "finalize", str(tmp_path / "ac.psbt"), "-o", "-", "--json"))
    assert PSBT.parse(base64.b64decode(done["psbt"])).serialize() == final.serialize() and done["signatures"] == 4
    for inp in final.inputs:
        inp.witness_utxo = inp.non_witness_utxo = None
    (tmp_path / "f.psbt").write_bytes(final.serialize())
    result = CliRunner().invoke(cli.main, ["psbt", "extract", str(tmp_path / "f.psbt")])
    assert result.exit_code == 0 and "not checked by libbitcoinkernel: input(s) 0, 1" in result.stderr
    (tmp_path / "prev.txt").write_text("\n".join(f.serialize().hex() for f in funding))
    got = json.loads(amanat("psbt", "extract", str(tmp_path / "f.psbt"), "--spent-from", str(tmp_path / "prev.txt"),
                            "--json"))
    assert got["verified"] and got["unknown_inputs"] == []


def test_cli_refusals(tmp_path):
    raw, _ = unsigned()
    other, _ = unsigned(pay=71_000)
    (tmp_path / "a.psbt").write_bytes(signed_by(raw, ROOTS[0]))
    (tmp_path / "o.psbt").write_bytes(signed_by(other, ROOTS[1]))
    out = tmp_path / "x.psbt"
    assert "different transaction" in amanat("psbt", "combine", str(tmp_path / "a.psbt"), str(tmp_path / "o.psbt"),
                                             "-o", str(out), code=8)
    assert "at least two" in amanat("psbt", "combine", str(tmp_path / "a.psbt"), "-o", str(out), code=2)
    bad = PSBT.parse(signed_by(raw, ROOTS[1]))
    pub = next(iter(bad.inputs[0].partial_sigs))
    bad.inputs[0].partial_sigs[pub] = fc.flip_bit(bad.inputs[0].partial_sigs[pub], at=-5)
    (tmp_path / "bad.psbt").write_bytes(psbt_tools.combine([signed_by(raw, ROOTS[0]), bad.serialize()]))
    assert "invalid ECDSA signature" in amanat("psbt", "finalize", str(tmp_path / "bad.psbt"), "-o", str(out), code=6)
    assert "cannot finalize" in amanat("psbt", "finalize", str(tmp_path / "a.psbt"), "-o", str(out), code=8)
    assert "not finalized" in amanat("psbt", "extract", str(tmp_path / "a.psbt"), code=8)
    (tmp_path / "junk").write_text("hello")
    assert "neither a binary nor a base64 PSBT" in amanat("psbt", "extract", str(tmp_path / "junk"), code=8)
    assert not out.exists()


# ---------------------------------------------------------------- the transaction as the PSBT states it


def edit_unsigned(raw: bytes, fn) -> bytes:
    """`raw` with its global unsigned transaction changed byte-exactly (embit's
    serializer would write a sequence of 0 as 0xFFFFFFFF)."""
    _, maps = psbt_raw.parse(raw)
    tx = Transaction.parse(maps.glob[UNSIGNED_TX])
    fn(tx)
    maps.glob[UNSIGNED_TX] = tx.serialize()
    return maps.serialize()


def sign_exact(raw: bytes, roots) -> bytes:
    """BIP143 signatures over the PSBT's own unsigned transaction (as any
    conforming signer makes them), added to the raw maps."""
    psbt, maps = psbt_raw.parse(raw)
    tx = Transaction.parse(maps.glob[UNSIGNED_TX])
    for i, inp in enumerate(psbt.inputs):
        for pub, der in inp.bip32_derivations.items():
            for root in roots:
                if der.fingerprint == root.my_fingerprint:
                    digest = tx.sighash_segwit(i, inp.witness_script, inp.witness_utxo.value, SIGHASH.ALL)
                    sig = root.derive(der.derivation).key.sign(digest).serialize() + bytes([SIGHASH.ALL])
                    maps.inputs[i][bytes([psbt_raw.PSBT_IN_PARTIAL_SIG]) + pub.sec()] = sig
    return maps.serialize()


def locked(sequence=0):
    def fn(tx):
        for inp in tx.vin:
            inp.sequence = sequence  # 0 enables the locktime; embit 0.8 reads it as 0xFFFFFFFF
        tx.locktime = 800_000
    return fn


def test_sequence_zero_and_locktime_are_kept():
    raw, funding = unsigned("wsh")
    raw = edit_unsigned(raw, locked())
    a, b = sign_exact(raw, ROOTS[:1]), sign_exact(raw, ROOTS[1:2])
    both = psbt_tools.combine([a, b])
    assert psbt_tools.verify_all_signatures(both) == 4
    final = psbt_tools.finalize(both)
    assert final.checked
    tx = Transaction.parse(final.tx)
    assert [i.sequence for i in tx.vin] == [0, 0] and tx.locktime == 800_000
    kernel.verify_transaction(final.tx, spent(funding))
    ex = psbt_tools.extract(final.psbt)
    assert ex.tx == final.tx and ex.checked


def test_signatures_over_sequence_ffffffff_do_not_pass_for_sequence_zero():
    raw, _ = unsigned("wsh")
    _, maps = psbt_raw.parse(sign_exact(edit_unsigned(raw, locked(0xFFFFFFFF)), ROOTS[:1]))
    maps.glob = psbt_raw.parse(edit_unsigned(raw, locked(0)))[1].glob
    with pytest.raises(SignatureError, match="input 0: invalid ECDSA signature"):
        psbt_tools.verify_all_signatures(maps.serialize())


def test_combine_tells_sequence_zero_from_final():
    raw, _ = unsigned("wsh")
    with pytest.raises(PsbtError, match="PSBT 2 is for a different transaction"):
        psbt_tools.combine([edit_unsigned(raw, locked(0xFFFFFFFF)), edit_unsigned(raw, locked(0))])


# ---------------------------------------------------------------- final fields held to the sighash rule


@pytest.mark.parametrize("form", list(FORMS))
def test_final_fields_follow_the_sighash_rule(form):
    raw, funding = unsigned(form)
    psbt = PSBT.parse(raw)
    for inp in psbt.inputs:
        inp.sighash_type = SIGHASH.NONE
    asked = psbt.serialize()
    signed = []
    for root in ROOTS[:2]:
        p = PSBT.parse(asked)
        assert p.sign_with(root, SIGHASH.NONE) == 2
        signed.append(p.serialize())
    final = psbt_tools.finalize(psbt_tools.combine(signed))  # the PSBT asks for NONE: fine
    assert final.checked
    # The finalizer clears PSBT_IN_SIGHASH_TYPE: the NONE signatures in the
    # final fields are now asked for by nobody.
    with pytest.raises(SignatureError, match="input 0: signed with sighash 0x02"):
        psbt_tools.finalize(final.psbt)
    with pytest.raises(SignatureError, match="input 0: signed with sighash 0x02"):
        psbt_tools.verify_all_signatures(final.psbt)
    # ALL signatures in final fields pass, and a finalized PSBT finalizes again.
    ok = psbt_tools.finalize(psbt_tools.combine([signed_by(raw, r) for r in ROOTS[:2]]))
    again = psbt_tools.finalize(ok.psbt)
    assert again.tx == ok.tx and again.checked and again.signatures == ok.signatures  # now in final fields


def test_final_fields_not_understood_are_refused():
    raw, _ = unsigned("wsh")
    final = PSBT.parse(psbt_tools.finalize(psbt_tools.combine([signed_by(raw, r) for r in ROOTS[:2]])).psbt)
    final.inputs[0].final_scriptwitness = Witness([b"\x01", b"\x02", b"\x03"])
    with pytest.raises(PsbtError, match="input 0: its final scriptSig/witness is not a form"):
        psbt_tools.finalize(final.serialize())
    # a single-sig witness on a P2WSH output
    sig = final.inputs[1].final_scriptwitness.items[1]
    final.inputs[0].final_scriptwitness = Witness([sig, ROOTS[0].key.get_public_key().sec()])
    with pytest.raises(PsbtError, match="input 0: its final scriptSig/witness \\(p2wpkh\\) does not fit the p2wsh"):
        psbt_tools.finalize(final.serialize())


# ---------------------------------------------------------------- malformed PSBTs: typed errors


def test_an_empty_taproot_leaf_field_is_a_clear_error():
    raw, _ = unsigned("tr")
    both = psbt_tools.combine([signed_by(raw, r) for r in ROOTS[:2]])
    _, maps = psbt_raw.parse(both)
    maps.inputs[0] = {bytes([psbt_raw.PSBT_IN_TAP_LEAF_SCRIPT, 0xC0]) + bytes([1]) * 32: b"", **maps.inputs[0]}  # looked at first
    bad = maps.serialize()
    assert psbt_tools.verify_all_signatures(bad) == 4
    with pytest.raises(PsbtError, match="input 0: an empty taproot leaf script field"):
        psbt_tools.finalize(bad)


@pytest.mark.parametrize("form", ["wsh", "tr"])
def test_an_input_without_utxo_is_a_clear_error(form):
    raw, _ = unsigned(form)
    psbt = PSBT.parse(raw)
    psbt.inputs[0].witness_utxo = psbt.inputs[0].non_witness_utxo = None
    with pytest.raises(PsbtError, match="input 0: the PSBT does not say what it spends"):
        psbt_tools.finalize(psbt.serialize())


def test_a_version_that_does_not_fit_is_a_clear_error():
    raw, _ = unsigned("wsh")
    psbt = PSBT.parse(raw)
    psbt.version = 2
    _, maps = psbt_raw.parse(psbt.serialize())
    maps.glob[bytes([psbt_raw.PSBT_GLOBAL_TX_VERSION])] = (2**32 + 2).to_bytes(5, "little")  # PSBTv2 fields are read whatever their length
    bad = maps.serialize()
    for fn in (psbt_tools.finalize, psbt_tools.extract, lambda r: psbt_tools.combine([r, r])):
        with pytest.raises(PsbtError, match="does not fit in 4 bytes"):
            fn(bad)


def test_cli_cannot_write_is_one_line(tmp_path):
    raw, _ = unsigned()
    (tmp_path / "a.psbt").write_bytes(signed_by(raw, ROOTS[0]))
    (tmp_path / "b.psbt").write_bytes(signed_by(raw, ROOTS[1]))
    nowhere = str(tmp_path / "missing" / "x")
    out = amanat("psbt", "combine", str(tmp_path / "a.psbt"), str(tmp_path / "b.psbt"), "-o", nowhere, code=1)
    assert f"cannot write {nowhere}" in out
    amanat("psbt", "combine", str(tmp_path / "a.psbt"), str(tmp_path / "b.psbt"), "-o", str(tmp_path / "ab.psbt"))
    assert "cannot write" in amanat("psbt", "finalize", str(tmp_path / "ab.psbt"), "-o", nowhere, code=1)
    amanat("psbt", "finalize", str(tmp_path / "ab.psbt"), "-o", str(tmp_path / "f.psbt"))
    assert "cannot write" in amanat("psbt", "extract", str(tmp_path / "f.psbt"), "-o", nowhere, code=1)


@pytest.mark.parametrize("form", list(FORMS))
def test_signatures_present_counts_towards_the_threshold(form):
    from amanat.finalize import signatures_present
    from amanat.psbt_raw import parse_psbt

    raw, _ = unsigned(form)
    count = lambda r: [signatures_present(inp) for inp in parse_psbt(r).inputs]  # noqa: E731
    assert count(raw) == [(0, 2), (0, 2)]
    one = signed_by(raw, ROOTS[0])
    assert count(one) == [(1, 2), (1, 2)]
    both = psbt_tools.combine([one, signed_by(raw, ROOTS[1])])
    assert count(both) == [(2, 2), (2, 2)]
    assert count(psbt_tools.finalize(both).psbt) == [(1, 1), (1, 1)]

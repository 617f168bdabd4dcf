"""`amanat psbt verify`: every signature of a PSBT, partial or in final
fields, checked against the sighash it must commit to; a tampered one is
named by its input, whatever the input types, their number and its position."""

import base64
import json

import pytest
from click.testing import CliRunner
from embit.psbt import PSBT
from embit.transaction import SIGHASH, Transaction
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fake_client as fc
from amanat import kernel, psbt_tools
from amanat.cli import main
from amanat.errors import SignatureError
from amanat.finalize import finalize as build_final_tx
from amanat.psbt_raw import parse_psbt
from test_psbt_verify import KINDS, ROOT, TAP_KEY_SIG, build

MUTATIONS = ["flip", "sighash", "wrong key", "moved"]


def _sig(inp):
    return inp.unknown[TAP_KEY_SIG] if inp.is_taproot else next(iter(inp.partial_sigs.values()))


def _set_sig(inp, sig):
    if inp.is_taproot:
        inp.unknown[TAP_KEY_SIG] = sig
    else:
        inp.partial_sigs[next(iter(inp.partial_sigs))] = sig


def _wrong_key_sig(psbt, n):
    """A valid signature of input n's sighash, by the key at the next index."""
    inp = psbt.inputs[n]
    if inp.is_taproot:
        (_, der), = inp.taproot_bip32_derivations.values()
        other = ROOT.derive(der.derivation[:-1] + [der.derivation[-1] + 1]).key.taproot_tweak(b"")
        return other.schnorr_sign(psbt.sighash(n, sighash=SIGHASH.DEFAULT)).serialize()
    (der,) = inp.bip32_derivations.values()
    other = ROOT.derive(der.derivation[:-1] + [der.derivation[-1] + 1]).key
    return other.sign(psbt.sighash(n, sighash=SIGHASH.ALL)).serialize() + b"\x01"


def signed(kinds, n, mutation):
    """A PSBT of `kinds` signed by ROOT, input n's signature tampered with."""
    psbt = PSBT.parse(build(kinds).psbt.serialize())
    assert fc.sign_psbt(psbt, ROOT) == len(kinds)
    inp = psbt.inputs[n]
    if mutation == "flip":
        _set_sig(inp, fc.flip_bit(_sig(inp), at=-5 if not inp.is_taproot else 10))
    elif mutation == "sighash":  # a signature over another sighash type than its byte says
        other = PSBT.parse(psbt.serialize())
        fc.sign_psbt(other, ROOT, SIGHASH.NONE if not inp.is_taproot else SIGHASH.ALL)
        sig = _sig(other.inputs[n])
        _set_sig(inp, sig[:-1] + b"\x01" if not inp.is_taproot else sig[:64])  # ALL / DEFAULT claimed
    elif mutation == "wrong key":
        _set_sig(inp, _wrong_key_sig(psbt, n))
    else:
        _set_sig(inp, _sig(psbt.inputs[(n + 1) % len(kinds)]))
    return psbt


def finalized(psbt) -> bytes:
    """Its final fields as a finalizer writes them, the signatures unchecked."""
    tx = Transaction.parse(build_final_tx(psbt))
    for inp, vin in zip(psbt.inputs, tx.vin):
        inp.partial_sigs.clear()
        inp.unknown.pop(TAP_KEY_SIG, None)
        inp.bip32_derivations.clear()
        inp.taproot_bip32_derivations.clear()
        inp.final_scriptsig = vin.script_sig if vin.script_sig.data else None
        inp.final_scriptwitness = vin.witness if vin.witness.items else None
    return psbt.serialize()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4), st.data(), st.sampled_from(MUTATIONS),
       st.booleans())
def test_a_tampered_signature_is_named_by_its_input(kinds, data, mutation, final):
    n = data.draw(st.integers(0, len(kinds) - 1), label="position")
    assume(mutation != "moved" or len(kinds) > 1)
    # in final fields, a moved signature must still make a witness of its input's form
    assume(not (final and mutation == "moved") or kinds[n] == kinds[(n + 1) % len(kinds)])
    psbt = signed(kinds, n, mutation)
    raw = finalized(psbt) if final else psbt.serialize()
    with pytest.raises(SignatureError, match=f"^input {n}: "):
        psbt_tools.verify(raw)


@pytest.mark.parametrize("final", [False, True])
def test_untampered_psbts_verify_and_count(final):
    built = build(KINDS)
    psbt = PSBT.parse(built.psbt.serialize())
    fc.sign_psbt(psbt, ROOT)
    raw = finalized(psbt) if final else psbt.serialize()
    v = psbt_tools.verify(raw)
    assert (v.partial, v.final, v.finalized, v.unsigned) == ((0, 4, 4, []) if final else (4, 0, 0, []))
    if final:
        tx = psbt_tools.extract(raw)
        kernel.verify_transaction(tx.tx, built.spent)


def test_multisig_final_signatures_are_checked_in_key_order():
    from test_psbt_tools import ROOTS, signed_by, unsigned

    for form in ("wsh", "sh-wsh", "sh", "tr"):
        raw, _ = unsigned(form)
        final = psbt_tools.finalize(psbt_tools.combine([signed_by(raw, r) for r in ROOTS[:2]]))
        v = psbt_tools.verify(final.psbt)
        assert v.final == 4 and v.finalized == 2, form
        psbt = parse_psbt(final.psbt)
        if form == "tr":  # the two signatures' places swapped: each now faces the other key
            items = psbt.inputs[0].final_scriptwitness.items
            sigs = [k for k, s in enumerate(items[:-2]) if s]
            a, b = sigs[0], sigs[-1]
            items[a], items[b] = items[b], items[a]
            psbt.inputs[0].final_scriptwitness.items = items
        elif form == "sh":
            parts = psbt.inputs[0].final_scriptsig
            psbt.inputs[0].final_scriptsig = type(parts)(fc.flip_bit(parts.data, at=12))
        else:  # CHECKMULTISIG needs the signatures in the keys' order
            items = psbt.inputs[0].final_scriptwitness.items
            items[1], items[2] = items[2], items[1]
        with pytest.raises(SignatureError, match="^input 0: "):
            psbt_tools.verify(psbt.serialize())


def test_cli_table_json_and_exit_codes(tmp_path):
    good = PSBT.parse(build(KINDS).psbt.serialize())
    fc.sign_psbt(good, ROOT)
    (tmp_path / "good.psbt").write_bytes(good.serialize())
    (tmp_path / "b64.psbt").write_text(base64.b64encode(finalized(PSBT.parse(good.serialize()))).decode())
    (tmp_path / "bad.psbt").write_bytes(signed(KINDS, 2, "flip").serialize())
    (tmp_path / "junk.psbt").write_text("not a psbt")
    run = CliRunner().invoke
    files = [str(tmp_path / f) for f in ("good.psbt", "b64.psbt")]
    r = run(main, ["psbt", "verify", *files, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["valid"] and [f["partial_signatures"] for f in out["files"]] == [4, 0]
    assert [f["final_signatures"] for f in out["files"]] == [0, 4]
    r = run(main, ["psbt", "verify", *files])
    assert r.exit_code == 0 and r.stdout.count(" valid ") == 2
    bad = str(tmp_path / "bad.psbt")
    r = run(main, ["psbt", "verify", files[0], bad, str(tmp_path / "junk.psbt")])
    assert r.exit_code == 6, r.output
    assert f"{bad}: input 2: invalid" in r.stderr and "INVALID" in r.stdout and "unreadable" in r.stdout
    r = run(main, ["psbt", "verify", str(tmp_path / "junk.psbt"), "--json"])
    assert r.exit_code == 8 and json.loads(r.stdout)["files"][0]["error"] == "not a PSBT (no psbt magic)"


def test_several_files_are_verified_in_a_process_pool():
    raws = []
    for n in range(3):
        psbt = PSBT.parse(build(KINDS[n:]).psbt.serialize())
        fc.sign_psbt(psbt, ROOT)
        raws.append(psbt.serialize())
    raws.append(signed(KINDS, 1, "wrong key").serialize())
    got = psbt_tools.verify_many(raws, jobs=2)
    assert [g.partial for g in got[:3]] == [4, 3, 2]
    assert isinstance(got[3], SignatureError) and got[3].message.startswith("input 1: ")


def test_previous_transactions_with_or_without_witness_match_their_outpoint():
    from embit.script import Witness

    from amanat.bench_memory import ROOT as BENCH_ROOT
    from amanat.bench_memory import p2wpkh_psbt
    from amanat.errors import PsbtError

    psbt = PSBT.parse(p2wpkh_psbt(2))
    psbt.sign_with(BENCH_ROOT)
    assert psbt_tools.verify(psbt.serialize()).partial == 2  # txid hashed from the field's bytes
    psbt.inputs[0].non_witness_utxo.vin[0].witness = Witness([b"\x01" * 71, b"\x02" * 33])
    assert psbt_tools.verify(psbt.serialize()).partial == 2  # with a witness: its txid leaves it out
    psbt.inputs[1].non_witness_utxo.locktime += 1
    with pytest.raises((PsbtError, SignatureError), match="input 1: the previous transaction does not match"):
        psbt_tools.verify(psbt.serialize())


@pytest.mark.parametrize("version", [None, 2])
def test_raw_maps_alone_are_the_maps_of_a_full_parse(version):
    from amanat import psbt_raw
    from amanat.errors import PsbtError

    raw = build(KINDS, version).psbt.serialize()
    assert psbt_raw.parse_maps(raw) == psbt_raw.parse(raw)[1]
    for bad, message in [(b"nope" + raw[4:], "no PSBT magic"), (raw[:-3], "truncated"), (raw + b"\x00", "data after")]:
        with pytest.raises(PsbtError, match=message):
            psbt_raw.parse_maps(bad)


def test_a_changed_outpoint_is_still_named():
    psbt = PSBT.parse(build(KINDS).psbt.serialize())
    before = psbt.serialize()
    fc.sign_psbt(psbt, ROOT)
    psbt.inputs[2].sequence -= 1
    from amanat.psbt_verify import verify_new_signatures

    with pytest.raises(SignatureError, match="input 2: the device changed the outpoint or sequence"):
        verify_new_signatures(before, psbt.serialize())

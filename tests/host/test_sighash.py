"""amanat.sighash against Bitcoin Core: transactions mixing input types and
sighash types (one per input), signed over its digests, pass
libbitcoinkernel, and the host's verifier accepts exactly those signatures."""

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fake_client as fc
from amanat import kernel, txbuild
from amanat.finalize import finalize
from amanat.psbt_raw import parse_psbt
from amanat.psbt_verify import verify_new_signatures
from amanat.sighash import SighashError, TxDigests, has_codeseparator

import pytest

ROOT = fc.root_key()
KINDS = ["p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2tr"]
TYPES = [0x01, 0x02, 0x03, 0x81, 0x82, 0x83]


def account(kind):
    path = txbuild.account_path(kind, "regtest")
    return txbuild.Account(kind, ROOT.derive(path).to_public(), ROOT.my_fingerprint, path)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(TYPES + [0x00])), min_size=1, max_size=4),
       st.integers(0, 3))
def test_mixed_inputs_and_sighash_types_pass_consensus(inputs, extra_outputs):
    outputs = 2 + extra_outputs
    for i, (kind, sh) in enumerate(inputs):
        assume(sh != 0x00 or kind == "p2tr")  # DEFAULT is taproot's alone
        assume(not (kind == "p2tr" and sh & 3 == 3 and i >= outputs))  # no such taproot digest
    coins = [(account(k), n, 100_000 + 1_000 * n) for n, (k, _) in enumerate(inputs)]
    more = [(account("p2wpkh").output(0, 50 + n), 5_000) for n in range(extra_outputs)]
    built = txbuild.build_spend(coins, account("p2wpkh").output(0, 40), 20_000, 1_000,
                                change=(account(inputs[0][0]), 3), more=more, tag=77)
    for inp, (_, sh) in zip(built.psbt.inputs, inputs):
        inp.sighash_type = sh
    before = built.psbt.serialize()
    psbt = parse_psbt(before)
    assert fc.sign_psbt(psbt, ROOT) == len(inputs)
    after = psbt.serialize()
    assert verify_new_signatures(before, after) == len(inputs)
    kernel.verify_transaction(finalize(parse_psbt(after)), built.spent)


def test_taproot_single_without_its_output_has_no_digest():
    d = TxDigests(2, 0, [bytes(36)] * 2, [0, 0], [bytes(9)], spent=[])
    d.spent = [type("S", (), {"value": 1, "script_pubkey": b"\x51"})()] * 2
    with pytest.raises(SighashError, match="no output 1"):
        d.taproot(1, 0x03)
    assert d.taproot(0, 0x03) != d.taproot(0, 0x83)


def test_codeseparator_is_found_only_as_an_opcode():
    assert has_codeseparator(b"\x51\xab")
    assert not has_codeseparator(b"\x02\xab\xab\x51")  # pushed data
    assert not has_codeseparator(b"\x4c\x01\xab")
    with pytest.raises(SighashError, match="OP_CODESEPARATOR"):
        TxDigests(2, 0, [bytes(36)], [0], [bytes(9)]).legacy(0, b"\xab\xac", 0x01)

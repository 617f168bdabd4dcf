"""amanat.psbt_raw: the one reader of a PSBT's raw form, whose errors each
caller turns into its own (SignatureError for the device's work, PsbtError
for `amanat psbt`)."""

import pytest
from embit.psbt import PSBT
from embit.script import Witness

import fake_client as fc
from amanat import psbt_raw, psbt_tools, psbt_verify, txbuild
from amanat.errors import PsbtError, SignatureError
from psbt_scopes import join_scopes, split_scopes

ROOT = fc.root_key()


def built_raw() -> bytes:
    path = txbuild.account_path("p2wpkh", "regtest")
    acct = txbuild.Account("p2wpkh", ROOT.derive(path).to_public(), ROOT.my_fingerprint, path)
    return txbuild.build_spend([(acct, 0, 100_000)], acct.output(0, 9), 50_000, 1_000, change=(acct, 1)).psbt.serialize()


def test_maps_round_trip_byte_exact():
    raw = built_raw()
    psbt, maps = psbt_raw.parse(raw)
    assert maps.serialize() == raw
    assert len(maps.inputs) == len(psbt.inputs) and len(maps.outputs) == len(psbt.outputs)


def duplicated(raw: bytes) -> bytes:
    scopes = split_scopes(raw)
    scopes[1].append(scopes[1][0])
    return join_scopes(scopes)


@pytest.mark.parametrize("bad", [duplicated, lambda raw: raw + b"\x00", lambda raw: raw[:-3],
                                 lambda raw: b"psbt\xff\x01"])
def test_malformed_psbts_are_a_psbt_error_naming_the_psbt(bad):
    raw = bad(built_raw())
    with pytest.raises(PsbtError, match="^PSBT 7 "):
        psbt_raw.parse(raw, "PSBT 7")
    # the same problem in what the device returned is the device's fault: exit 6
    with pytest.raises(SignatureError, match="^the PSBT returned by the device "):
        psbt_verify.verify_new_signatures(built_raw(), raw)


@pytest.mark.parametrize("key, ok", [
    (bytes([psbt_raw.PSBT_IN_PARTIAL_SIG]) + b"\x02" * 33, True),
    (bytes([psbt_raw.PSBT_IN_PARTIAL_SIG]) + b"\x04" * 65, True),
    (bytes([psbt_raw.PSBT_IN_PARTIAL_SIG]) + b"\x02" * 32, False),
    (bytes([psbt_raw.PSBT_IN_TAP_KEY_SIG]), True),
    (bytes([psbt_raw.PSBT_IN_TAP_KEY_SIG, 0]), False),
    (bytes([psbt_raw.PSBT_IN_TAP_SCRIPT_SIG]) + b"\x01" * 64, True),
    (bytes([psbt_raw.PSBT_IN_BIP32_DERIVATION]) + b"\x02" * 33, False),
])
def test_signature_keys(key, ok):
    assert psbt_raw.is_signature_key(key) is ok


def test_a_previous_transaction_that_does_not_match_is_a_psbt_error_in_extract():
    psbt = PSBT.parse(built_raw())
    other = txbuild.funding_tx([(psbt.inputs[0].witness_utxo.script_pubkey, 100_000)], tag=99)
    psbt.inputs[0].non_witness_utxo = other
    psbt.inputs[0].final_scriptwitness = Witness([b"\x01"])  # extract looks no further than "finalized"
    with pytest.raises(PsbtError, match="input 0: the previous transaction does not match the outpoint"):
        psbt_tools.extract(psbt.serialize())

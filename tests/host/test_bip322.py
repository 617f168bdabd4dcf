"""BIP-322 on the host (amanat.reserves) against the BIP's vectors: message
hashes, to_spend/to_sign txids, simple signatures checked by
libbitcoinkernel, the error cases rejected, proofs of funds verified."""

import base64
import json
from pathlib import Path

import pytest
from embit.script import address_to_scriptpubkey

from amanat import reserves
from amanat.psbt_raw import parse_psbt

VECTORS = Path(__file__).parent.parent / "vectors"
BASIC = json.loads((VECTORS / "bip322_basic_test_vectors.json").read_text())
GENERATED = json.loads((VECTORS / "bip322_generated_test_vectors.json").read_text())


def spk(address):
    return address_to_scriptpubkey(address).data


@pytest.mark.parametrize("v", BASIC["tx_hashes"], ids=lambda v: repr(v["message"][:12]))
def test_message_hash_and_txids(v):
    m = v["message"].encode()
    assert reserves.message_hash(m).hex() == v["message_hash"]
    assert reserves.to_spend(m, spk(v["address"])).txid().hex() == v["to_spend_tx_hash"]
    assert reserves.to_sign(m, spk(v["address"])).txid().hex() == v["to_sign_tx_hash"]


SIMPLE = [(v, s) for v in BASIC["simple"] + GENERATED["simple"] for s in v["bip322_signatures"]]


@pytest.mark.parametrize("v, sig", SIMPLE, ids=lambda x: x["type"] if isinstance(x, dict) else x[:10])
def test_simple_signatures_verify(v, sig):
    reserves.verify_simple(spk(v["address"]), v["message"].encode(), sig)
    with pytest.raises(reserves.ProofError, match="invalid signature"):
        reserves.verify_simple(spk(v["address"]), v["message"].encode() + b"!", sig)


@pytest.mark.parametrize("v", [v for v in BASIC["error"] + GENERATED["error"] if v["signature"][:3] in ("smp", "")
                               or not v["signature"].startswith(("ful", "pof"))], ids=lambda v: v["description"])
def test_error_cases_are_rejected(v):
    with pytest.raises(reserves.ProofError):
        reserves.verify_simple(spk(v["address"]), v["message"].encode(), v["signature"])


@pytest.mark.parametrize("v", GENERATED["proof_of_funds"], ids=lambda v: v["message"][:8])
def test_proofs_of_funds_verify(v):
    psbt = parse_psbt(base64.b64decode(v["bip322_signatures"][0][3:]))
    extra = [x for group in v["additional_inputs"] for x in group]
    utxos = {i + 1: (bytes.fromhex(x["pk_script"]), x["value"]) for i, x in enumerate(extra)}
    proved = reserves.verify_proof(psbt, v["message"].encode(), utxos)
    assert (proved.coins, proved.total) == (len(extra), sum(x["value"] for x in extra))
    assert proved.challenge == spk(v["address"])
    with pytest.raises(reserves.ProofError, match="to_spend"):
        reserves.verify_proof(psbt, v["message"].encode() + b" (edited)", utxos)
    inp = psbt.inputs[1]
    if inp.witness_utxo is not None:  # a stated amount other than the one signed
        inp.witness_utxo.value += 1
        inp.non_witness_utxo = None
        with pytest.raises(reserves.ProofError, match="does not verify"):
            reserves.verify_proof(psbt, v["message"].encode(), utxos)

def test_a_coin_is_parsed_or_named():
    c = reserves.parse_coin("ab" * 32 + ":1:150000:0/3")
    assert (c.vout, c.amount, c.change, c.index) == (1, 150000, 0, 3)
    for bad in ("ab:1:2:0/1", "ab" * 32 + ":1:0:0/1", "ab" * 32 + ":1:5:2/1", "x"):
        with pytest.raises(reserves.ProofError, match="TXID:VOUT:AMOUNT_SAT:CHANGE/INDEX"):
            reserves.parse_coin(bad)

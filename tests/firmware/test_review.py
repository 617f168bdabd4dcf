"""The device's transaction review, run on the MicroPython VM: numbers, refusals, memory.

PSBTs are built (and, for the real vsize, signed and finalized) on the host;
the review runs under the real `micropython` binary through amanat.inprocess.
"""

import os
import subprocess

import pytest
from embit import bip32, bip39, script
from embit.networks import NETWORKS
from embit.psbt import PSBT, DerivationPath, OutputScope
from embit.transaction import Transaction

from amanat import descriptors, finalize, inprocess, mpy, txbuild
from psbt_scopes import join_scopes, split_scopes

MNEMONIC = "all all all all all all all all all all all all"
NETWORK = "test"
NET = NETWORKS[NETWORK]
KINDS = list(txbuild.PURPOSE)
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
OTHER = bip32.HDKey.from_seed(bytes(range(64)), version=NET["xprv"])
H = descriptors.HARDENED


def account(kind, root=ROOT, path=None):
    path = path or txbuild.account_path(kind, NETWORK)
    return txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)


ACCOUNTS = {k: account(k) for k in KINDS}
FOREIGN = account("p2wpkh", OTHER)


def payee():
    return script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())


def review(raw, **kw):
    return inprocess.review(raw, MNEMONIC, network=NETWORK, **kw)


def real_vsize(built):
    """vsize of the transaction once signed by every owner (host, libsecp256k1)."""
    psbt = PSBT.parse(built.psbt.serialize())
    psbt.sign_with(ROOT)
    psbt.sign_with(OTHER)
    tx = Transaction.parse(finalize.finalize(psbt))
    full = len(tx.serialize())
    for vin in tx.vin:
        vin.witness.items = []
    stripped = len(tx.serialize())
    return (stripped * 3 + full + 3) // 4


# --- numbers


@pytest.mark.parametrize("version", [0, 2])
def test_review_numbers(version):
    coins = [(ACCOUNTS[k], i, 100_000 + i) for i, k in enumerate(KINDS)]
    coins.append((FOREIGN, 0, 50_000))
    built = txbuild.build_spend(
        coins, payee(), 250_000, 3_210, change=(ACCOUNTS["p2tr"], 9), version=version
    )
    r = review(built.psbt.serialize())
    change_amount = sum(a for _, _, a in coins) - 250_000 - 3_210
    assert r["version"] == version
    assert r["inputs"] == 5 and r["outputs"] == 2
    assert r["spends"] == [{"address": payee().address(NET), "amount_sat": 250_000}]
    assert r["change"] == [
        {
            "address": ACCOUNTS["p2tr"].output(1, 9).address(NET),
            "amount_sat": change_amount,
            "path": "m/86h/1h/0h/1/9",
        }
    ]
    assert r["fee_sat"] == 3_210
    assert r["signing"] == 4 and r["account"] == "account 0" and r["wallet"] is None
    assert (r["spends_count"], r["sent_sat"]) == (1, 250_000) and (r["change_count"], r["change_sat"]) == (1, change_amount)
    assert "truncated" not in r
    assert r["warnings"] == ["input 4 is not signed by this device"]
    assert r["locktime"] == 0
    real = real_vsize(built)
    assert abs(r["vsize"] - real) <= 2, (r["vsize"], real)
    assert abs(r["fee_rate_tenths"] - 3_210 * 10 / r["vsize"]) <= 0.5  # tenths of sat/vB, rounded


@pytest.mark.parametrize("kind", KINDS)
def test_vsize_estimate_per_input_type(kind):
    built = txbuild.build_spend([(ACCOUNTS[kind], 1, 80_000), (ACCOUNTS[kind], 2, 80_000)], payee(), 100_000, 1_000,
                                change=(ACCOUNTS[kind], 0))
    r = review(built.psbt.serialize())
    assert abs(r["vsize"] - real_vsize(built)) <= 2


def test_fee_and_locktime_warnings():
    """Fee warnings still show under limits the officer has raised."""
    built = txbuild.build_spend([(ACCOUNTS["p2wpkh"], 0, 5_000_000)], payee(), 100_000, 1_500_000,
                                change=(ACCOUNTS["p2wpkh"], 0))
    built.psbt.locktime = 800_000
    r = review(built.psbt.serialize(), limits={"fee_percent_tenths": 20_000, "fee_max_sat": 2_000_000})
    assert r["locktime"] == 800_000
    assert r["warnings"] == [
        "fee of 1500000 sat is above 0.01 BTC",
        "fee is 1500.0% of the amount sent",
        "locktime set: not valid before block 800000",
    ]


def test_fee_rate_below_one_sat_per_vbyte():
    built = txbuild.build_spend([(ACCOUNTS["p2tr"], 0, 50_000)], payee(), 49_950, 50)
    r = review(built.psbt.serialize())
    assert r["fee_rate_tenths"] < 10
    assert r["warnings"] == ["fee rate below 1 sat/vB: the network may not relay it"]


def test_outputs_of_ours_at_unusual_paths_are_spends():
    """Change only at the standard path for its script type; anything else of
    ours is shown as a spend with a warning. The receive chain counts as ours."""
    wrong_purpose = account("p2wpkh", path="m/44h/1h/0h")  # p2wpkh script, BIP44 path
    wrong_coin = account("p2wpkh", path="m/84h/0h/0h")  # mainnet coin type on testnet
    coins = [(ACCOUNTS["p2wpkh"], 0, 500_000)]
    built = txbuild.build_spend(coins, payee(), 100_000, 1_000, change=(ACCOUNTS["p2wpkh"], 1))
    psbt = built.psbt
    extra = [
        (wrong_purpose, 1, 3),
        (wrong_coin, 1, 4),
        (ACCOUNTS["p2wpkh"], 1, 1_000_001),
        (ACCOUNTS["p2wpkh"], 0, 7),
    ]
    psbt.outputs[1].value -= 4 * 10_000
    for acct, chain, idx in extra:
        out = OutputScope({}, vout=txbuild.TransactionOutput(10_000, acct.output(chain, idx)))
        acct.describe_output(out, chain, idx)
        psbt.outputs.append(out)
    r = review(psbt.serialize())
    assert [c["path"] for c in r["change"]] == ["m/84h/1h/0h/1/1", "m/84h/1h/0h/0/7"]
    assert len(r["spends"]) == 4
    assert r["warnings"] == [
        "output 2 pays to this device at an unusual path m/44h/1h/0h/1/3",
        "output 3 pays to this device at an unusual path m/84h/0h/0h/1/4",
        "output 4 pays to this device at an unusual path m/84h/1h/0h/1/1000001",
    ]


def test_change_returns_only_to_the_inputs_account():
    """Every script type of account 0 is one wallet; an output to account 1 of
    this device is a spend, with a warning naming the account; inputs from two
    accounts are refused like inputs from two wallets."""
    other = account("p2wpkh", path="m/84h/1h/1h")
    coins = [(ACCOUNTS["p2wpkh"], 0, 300_000), (ACCOUNTS["p2tr"], 1, 200_000)]
    built = txbuild.build_spend(coins, payee(), 100_000, 1_000, change=(ACCOUNTS["p2tr"], 2))
    psbt = built.psbt
    psbt.outputs[1].value -= 10_000
    out = OutputScope({}, vout=txbuild.TransactionOutput(10_000, other.output(1, 3)))
    other.describe_output(out, 1, 3)
    psbt.outputs.append(out)
    r = review(psbt.serialize())
    assert r["account"] == "account 0" and [c["path"] for c in r["change"]] == ["m/86h/1h/0h/1/2"]
    assert r["spends_count"] == 2
    assert r["warnings"] == ["output 2 pays to this device's account 1, not to account 0 the inputs come from"]
    mixed = txbuild.build_spend([(ACCOUNTS["p2wpkh"], 0, 300_000), (other, 1, 200_000)], payee(), 100_000, 1_000)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(mixed.psbt.serialize())
    assert e.value.message == "inputs 0 and 1 belong to different wallets (single-sig account 0, single-sig account 1)"


def test_totals_above_21_million_btc_are_refused():
    """Each amount in range is not enough: their sum must be too."""
    built = txbuild.build_spend([(ACCOUNTS["p2tr"], 0, 100_000)], payee(), 50_000, 1_000)
    psbt = built.psbt
    for _ in range(2):
        psbt.outputs.append(OutputScope({}, vout=txbuild.TransactionOutput(2_000_000_000_000_000, payee())))
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(psbt.serialize())
    assert (e.value.name, e.value.message) == ("REFUSED", "outputs 0 to 2 add up to more than 21 million BTC")


def test_outputs_without_address():
    built = txbuild.build_spend([(ACCOUNTS["p2wpkh"], 0, 500_000)], payee(), 100_000, 1_000,
                                change=(ACCOUNTS["p2wpkh"], 1))
    psbt = built.psbt
    psbt.outputs[1].value -= 2_000
    for value, data in ((1_000, b"\x6a\x04abcd"), (1_000, b"\x51")):
        psbt.outputs.append(OutputScope({}, vout=txbuild.TransactionOutput(value, script.Script(data))))
    r = review(psbt.serialize())
    assert [s["address"] for s in r["spends"][1:]] == ["OP_RETURN 0461626364", "script 51"]
    assert r["warnings"] == [
        "output 2 is an OP_RETURN output: its 1000 sat are burnt",
        "output 3 pays to a script with no address",
    ]


# --- refusals and malformed PSBTs


def base(kind="p2wpkh", version=0):
    """Our coin (index 3) and a foreign one; payment and change (index 2)."""
    return txbuild.build_spend(
        [(ACCOUNTS[kind], 3, 60_000), (FOREIGN, 0, 40_000)],
        payee(),
        50_000,
        1_000,
        change=(ACCOUNTS[kind], 2),
        version=version,
    )


def rederive(scope, acct, chain, idx, claimed_idx=None):
    """Replace scope's derivation with the key at `idx`, claimed at `claimed_idx`."""
    pub, _ = acct.key(chain, idx)
    _, der = acct.key(chain, idx if claimed_idx is None else claimed_idx)
    scope.bip32_derivations = {pub: DerivationPath(acct.fingerprint, der)}


def no_utxo(p):
    p.inputs[1].witness_utxo = None
    p.inputs[1].non_witness_utxo = None


def other_prev_tx(p):
    f = txbuild.funding_tx([(ACCOUNTS["p2wpkh"].output(0, 3), 60_000)], tag=77)
    p.inputs[0].non_witness_utxo = f


def disagree(p):
    p.inputs[0].witness_utxo = txbuild.TransactionOutput(70_000, p.inputs[0].witness_utxo.script_pubkey)


def duplicate(p):
    p.inputs[1] = PSBT.parse(p.serialize()).inputs[0]


def sighash(value):
    def f(p):
        p.inputs[0].sighash_type = value

    return f


def set_attr(scope, name, value):
    def f(p):
        setattr(scope(p), name, value)

    return f


REFUSALS = [
    ("key_differs", "p2wpkh", lambda p: rederive(p.inputs[0], ACCOUNTS["p2wpkh"], 0, 3, 4),
     "input 0: key at m/84h/1h/0h/0/4 is not this device's key for that path"),
    ("script_not_rebuilt", "p2wpkh", lambda p: rederive(p.inputs[0], ACCOUNTS["p2wpkh"], 0, 4),
     "input 0: script does not match the key at m/84h/1h/0h/0/4"),
    ("outputs_exceed_inputs", "p2wpkh", set_attr(lambda p: p.outputs[0], "value", 200_000),
     "outputs (249000 sat) exceed inputs (100000 sat)"),
    ("amount_unknown", "p2wpkh", no_utxo,
     "input 1: amount unknown (no witness_utxo or non_witness_utxo)"),
    ("txid_mismatch", "p2wpkh", other_prev_tx, "input 0: previous transaction does not match its txid"),
    ("segwit_v0_without_prev_tx", "p2wpkh", set_attr(lambda p: p.inputs[0], "non_witness_utxo", None),
     "input 0: previous transaction (non_witness_utxo) missing; required for segwit v0 and legacy inputs"),
    ("p2sh_without_prev_tx", "p2sh-p2wpkh", set_attr(lambda p: p.inputs[0], "non_witness_utxo", None),
     "input 0: previous transaction (non_witness_utxo) missing; required for segwit v0 and legacy inputs"),
    ("utxos_disagree", "p2wpkh", disagree, "input 0: witness_utxo and non_witness_utxo disagree"),
    ("duplicate_input", "p2wpkh", duplicate, "input 1 spends the same coin as input 0"),
    ("sighash_none", "p2wpkh", sighash(2), "input 0: sighash type 0x02 is not allowed (only ALL)"),
    ("sighash_default_not_taproot", "p2pkh", sighash(0), "input 0: sighash type 0x00 is not allowed (only ALL)"),
    ("taproot_anyonecanpay", "p2tr", sighash(0x81), "input 0: sighash type 0x81 is not allowed (only ALL)"),
    ("taproot_script_tree", "p2tr", set_attr(lambda p: p.inputs[0], "taproot_merkle_root", bytes(32)),
     "input 0: taproot script tree present; only BIP86 key-path spends are supported"),
    ("change_script_not_rebuilt", "p2wpkh", lambda p: rederive(p.outputs[1], ACCOUNTS["p2wpkh"], 1, 5),
     "output 1: script does not match the key at m/84h/1h/0h/1/5"),
    ("change_key_differs", "p2wpkh", lambda p: rederive(p.outputs[1], ACCOUNTS["p2wpkh"], 1, 2, 5),
     "output 1: key at m/84h/1h/0h/1/5 is not this device's key for that path"),
]


@pytest.mark.parametrize("name,kind,mutate,message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(name, kind, mutate, message):
    built = base(kind)
    mutate(built.psbt)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(built.psbt.serialize())
    assert (e.value.name, e.value.message) == ("REFUSED", message)


def test_refuses_psbt_with_no_input_of_ours():
    built = txbuild.build_spend([(FOREIGN, 1, 40_000)], payee(), 30_000, 500)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(built.psbt.serialize())
    assert (e.value.name, e.value.message) == ("REFUSED", "no input of this PSBT belongs to this device")


def v0_with_v2_txid(raw):
    scopes = split_scopes(raw)
    scopes[1].append((b"\x0e", bytes(32)))
    return join_scopes(scopes)


def duplicate_key(raw):
    scopes = split_scopes(raw)
    scopes[1].append(scopes[1][-1])
    return join_scopes(scopes)


def prev_tx_short_of_its_field(raw):
    scopes = split_scopes(raw)
    key, value = scopes[1][0]
    assert key == b"\x00"
    # the rest of the field would read as a key 0xfc... to embit alone
    scopes[1][0] = (key, value + b"\x02\xfc\x00\x00")
    return join_scopes(scopes)


def v2_with_unsigned_tx(raw):
    scopes = split_scopes(raw)
    tx = PSBT.parse(raw).tx
    for vin in tx.vin:
        vin.witness.items = []
    scopes[0].insert(0, (b"\x00", tx.serialize()))
    return join_scopes(scopes)


def v2_missing_txid(raw):
    scopes = split_scopes(raw)
    scopes[1] = [kv for kv in scopes[1] if kv[0] != b"\x0e"]
    return join_scopes(scopes)


MALFORMED = [
    ("not_a_psbt", 0, lambda raw: b"hello world", "not a valid PSBT"),
    ("truncated", 0, lambda raw: raw[: len(raw) - 40], ""),
    ("trailing_data", 0, lambda raw: raw + b"\x00", "data after the last output"),
    ("v0_input_with_v2_txid", 0, v0_with_v2_txid, "input 0: fields disagree with the unsigned transaction"),
    ("duplicate_key", 0, duplicate_key, "input 0: duplicate key"),
    ("prev_tx_short_of_field", 0, prev_tx_short_of_its_field, "input 0: non_witness_utxo does not fill its field"),
    ("v2_with_unsigned_tx", 2, v2_with_unsigned_tx, "PSBT v2 with an unsigned transaction"),
    ("v2_missing_txid", 2, v2_missing_txid, "input 0: previous txid or output index missing or malformed"),
]


@pytest.mark.parametrize("name,version,corrupt,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed(name, version, corrupt, message):
    raw = corrupt(base(version=version).psbt.serialize())
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(raw)
    assert e.value.name == "BAD_PSBT"
    assert e.value.message.startswith(message), e.value.message


# --- memory


def twenty_inputs(big_prev_tx=0):
    kinds = ["p2wpkh", "p2tr", "p2sh-p2wpkh", "p2pkh"]
    coins = [(ACCOUNTS[kinds[i % 4]], i, 10_000 + i) for i in range(20)]
    built = txbuild.build_spend(coins, payee(), 150_000, 4_000, change=(ACCOUNTS["p2tr"], 3))
    if big_prev_tx:
        # input 0's previous transaction also pays many others
        inp = built.psbt.inputs[0]
        outs = [(inp.non_witness_utxo.vout[0].script_pubkey, 10_000)] + [(payee(), 546)] * big_prev_tx
        inp.non_witness_utxo = txbuild.funding_tx(outs, tag=99)
        inp.txid = inp.non_witness_utxo.txid()
    return built


# -X heapsize for the test below. On the unix port the firmware and embit are
# compiled into the heap when imported, and that, not signing, sets the
# smallest heap that works: importing embit.bip39 needs one 34.5 kB block, and
# from 472 KiB up it always finds one, whether the PSBT has 1 input or 20.
# With precompiled modules 20 inputs need about 16 KiB more than 1 input
# (AMANAT_HEAP_SEARCH=1 runs both searches).
HEAP_CAP = 480 * 1024


def sign_file(tmp_path, built, heap):
    src, dst = tmp_path / "in.psbt", tmp_path / "out.psbt"
    src.write_bytes(built.psbt.serialize())
    out = inprocess.sign_file(str(src), str(dst), MNEMONIC, network=NETWORK, heap=heap)
    return out, dst.read_bytes()


def test_twenty_inputs_sign_in_a_small_heap(tmp_path):
    """20 inputs, one of them with a previous transaction larger than all the
    heap left once the code is loaded: it is streamed, never held whole."""
    built = twenty_inputs(big_prev_tx=8000)
    prev_tx = len(built.psbt.inputs[0].non_witness_utxo.serialize())
    out, signed = sign_file(tmp_path, built, HEAP_CAP)
    assert out["count"] == 20
    free_after_setup = HEAP_CAP - out["heap_after_setup"]
    print(
        f"\n20 inputs, {len(built.psbt.serialize())} byte PSBT with a {prev_tx} byte previous transaction:"
        f" signed in -X heapsize={HEAP_CAP}, {out['heap_after_setup']} bytes in use after loading"
        f" code and keys, {free_after_setup} free"
    )
    assert prev_tx > free_after_setup
    assert PSBT.parse(signed).inputs[0].non_witness_utxo.txid() == built.psbt.inputs[0].txid


def precompile(dest):
    """The firmware and embit as .mpy files (x64), as close as the unix port
    gets to frozen modules: no compiler in the heap."""
    from amanat import paths

    for base, pkg in ((paths.firmware_dir(), "signer"), (paths.embit_root(), "embit")):
        for py in (base / pkg).rglob("*.py"):
            if "liquid" in py.parts:
                continue
            out = dest / py.relative_to(base).with_suffix(".mpy")
            out.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([paths.mpy_cross_bin(), "-march=x64", "-o", str(out), str(py)], check=True)


def smallest_heap(fn, lo=16 * 1024, hi=1024 * 1024):
    while hi - lo > 1024:
        mid = (lo + hi) // 2
        try:
            fn(mid)
            hi = mid
        except mpy.MicroPythonError:
            lo = mid
    return hi


@pytest.mark.skipif(not os.environ.get("AMANAT_HEAP_SEARCH"), reason="set AMANAT_HEAP_SEARCH=1 to search")
@pytest.mark.parametrize("compiled", [False, True], ids=["source", "mpy"])
def test_search_smallest_heap(tmp_path, monkeypatch, compiled):
    if compiled:
        precompile(tmp_path / "mpy")
        run = mpy.run
        monkeypatch.setattr(mpy, "run", lambda code, **kw: run(code, extra_path=[tmp_path / "mpy"], **kw))
    one = txbuild.build_spend([(ACCOUNTS["p2wpkh"], 0, 50_000)], payee(), 30_000, 500)
    cases = [
        ("keys loaded, nothing signed", lambda heap: inprocess.xpubs(MNEMONIC, [], network=NETWORK, heap=heap)),
        ("1 input", lambda heap: sign_file(tmp_path, one, heap)),
        ("20 inputs", lambda heap: sign_file(tmp_path, twenty_inputs(), heap)),
        ("20 inputs, 124 kB previous tx", lambda heap: sign_file(tmp_path, twenty_inputs(4000), heap)),
    ]
    print()
    for name, fn in cases:
        print(f"{'mpy' if compiled else 'source'}: {name}: smallest -X heapsize about {smallest_heap(fn) // 1024} KiB")

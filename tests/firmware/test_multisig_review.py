"""Registered multisig wallets on the MicroPython VM: review, signing, refusals.

Wallets are 2-of-3 between this device's seed and two seeds held by the host.
PSBTs and their scripts are built on the host (amanat.txbuild, embit on
CPython); the device registers the wallet's descriptor, reviews and signs
under the real `micropython` binary; the host checks the device's signatures
(amanat.psbt_verify), adds a cosigner's signature with embit, finalizes, and
libbitcoinkernel runs every input's scripts.
"""

import pytest
from embit import base58, bip32, bip39, script
from embit.networks import NETWORKS
from embit.psbt import PSBT, DerivationPath
from embit.transaction import Transaction
from embit.util import secp256k1

from amanat import descriptors, finalize, inprocess, kernel, psbt_verify, txbuild

MNEMONIC = "all all all all all all all all all all all all"
NETWORK = "test"
NET = NETWORKS[NETWORK]
H = descriptors.HARDENED
OURS = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
ALICE = bip32.HDKey.from_seed(bytes(range(64)), version=NET["xprv"])
BOB = bip32.HDKey.from_seed(bytes(range(1, 65)), version=NET["xprv"])
EVE = bip32.HDKey.from_seed(bytes(range(2, 66)), version=NET["xprv"])
PATHS = {"wsh": "m/48h/1h/0h/2h", "sh-wsh": "m/48h/1h/0h/1h", "sh": "m/87h/1h/1h", "tr": "m/87h/1h/0h"}
FP = OURS.my_fingerprint.hex()


def wallet(kind, sorted_=True, roots=(OURS, ALICE, BOB), paths=None):
    paths = paths or [PATHS[kind]] * len(roots)
    return txbuild.Multisig(kind, 2, sorted_, [txbuild.cosigner(r, p) for r, p in zip(roots, paths)])


VAULT = {kind: wallet(kind) for kind in PATHS}


def payee():
    return script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())


def registered(*wallets):
    """[(name, descriptor)]: the first wallet is "Vault", the others "W2", "W3"."""
    return [("Vault" if n == 0 else f"W{n + 1}", w.descriptor()) for n, w in enumerate(wallets)]


def review(raw, wallets, limits=None):
    return inprocess.review(raw, MNEMONIC, network=NETWORK, wallets=wallets, limits=limits)


def real_vsize(tx_bytes):
    tx = Transaction.parse(tx_bytes)
    full = len(tx.serialize())
    for vin in tx.vin:
        vin.witness.items = []
    return (len(tx.serialize()) * 3 + full + 3) // 4


def spend(w=None, coins=((3, 60_000),), pay=40_000, fee=1_000, change=2, version=0):
    """Coins of wallet `w` (default: the wsh Vault) at (0, index); payment and
    change at (1, change)."""
    w = w or VAULT["wsh"]
    return txbuild.build_spend([(w, i, a) for i, a in coins], payee(), pay, fee,
                               change=(w, change) if change is not None else None, version=version)


def check_signed(built, raw, out, cosigner=ALICE):
    """Device signatures verified by the host, cosigner's added, kernel checks all."""
    assert psbt_verify.verify_new_signatures(raw, out["psbt"]) == out["count"]
    psbt = PSBT.parse(out["psbt"])
    if cosigner is not None:
        psbt.sign_with(cosigner)
    tx = finalize.finalize(psbt)
    kernel.verify_transaction(tx, built.spent)
    return psbt, tx


# --- signing, checked by libbitcoinkernel


@pytest.mark.parametrize("kind,sorted_", [("wsh", True), ("sh-wsh", False), ("sh", True), ("tr", True), ("tr", False)])
def test_sign_2_of_3(kind, sorted_):
    w = wallet(kind, sorted_)
    built = spend(w, coins=((3, 60_000), (4, 50_000)), pay=80_000, fee=1_500)
    raw = built.psbt.serialize()
    out = inprocess.sign_with_review(raw, MNEMONIC, network=NETWORK, wallets=registered(w))
    r = out["review"]
    assert out["count"] == 2 and r["signing"] == 2
    assert r["wallet"] == "Vault"
    assert r["spends"] == [{"address": payee().address(NET), "amount_sat": 80_000}]
    assert r["change"] == [{"address": w.address(1, 2, NETWORK), "amount_sat": 28_500,
                            "path": PATHS[kind] + "/1/2", "wallet": "Vault"}]
    assert r["fee_sat"] == 1_500 and r["warnings"] == []
    psbt, tx = check_signed(built, raw, out)
    inp = PSBT.parse(out["psbt"]).inputs[0]
    ours = w.cosigners[0].pub(0, 3)
    if kind == "tr":
        # BIP371: PSBT_IN_TAP_SCRIPT_SIG under (x-only key, leaf hash), 64 bytes
        leaf = w.scripts(0, 3).leaf_hash
        assert [(k.xonly(), h) for k, h in inp.taproot_sigs] == [(ours.xonly(), leaf)]
        sig = inp.taproot_sigs[(ours, leaf)]
        assert len(sig) == 64
        assert not inp.partial_sigs and not inp.final_scriptwitness
        # fresh auxiliary randomness: not the signature without it, nor with zeros
        h = PSBT.parse(raw).sighash(0, sighash=0, ext_flag=1, script=w.scripts(0, 3).leaf_script, leaf_version=0xC0)
        secret = OURS.derive(PATHS[kind] + "/0/3").key.secret
        for aux in (None, bytes(32)):
            assert sig != secp256k1.schnorrsig_sign(h, secret, None, aux)
    else:
        assert list(inp.partial_sigs) == [ours]
    assert abs(r["vsize"] - real_vsize(tx)) <= 3 * 2, (r["vsize"], real_vsize(tx))


def test_taproot_sighash_all_is_explicit():
    w = VAULT["tr"]
    built = spend(w)
    built.psbt.inputs[0].sighash_type = 1
    raw = built.psbt.serialize()
    out = inprocess.sign_with_review(raw, MNEMONIC, network=NETWORK, wallets=registered(w))
    [sig] = PSBT.parse(out["psbt"]).inputs[0].taproot_sigs.values()
    assert len(sig) == 65 and sig[-1] == 1
    assert psbt_verify.verify_new_signatures(raw, out["psbt"]) == 1
    psbt = PSBT.parse(out["psbt"])
    psbt.sign_with(ALICE, sighash=None)  # the cosigner signs with the PSBT's sighash too
    kernel.verify_transaction(finalize.finalize(psbt), built.spent)


def test_many_inputs_with_change_v2():
    w = VAULT["wsh"]
    coins = [(i, 20_000 + i) for i in range(8)]
    built = spend(w, coins=coins, pay=100_000, fee=2_000, change=7, version=2)
    raw = built.psbt.serialize()
    out = inprocess.sign_with_review(raw, MNEMONIC, network=NETWORK, wallets=registered(w))
    assert out["count"] == 8 and out["review"]["signing"] == 8
    assert out["progress"] == [[i, 8] for i in range(1, 9)]
    [change] = out["review"]["change"]
    assert change["wallet"] == "Vault" and change["path"] == "m/48h/1h/0h/2h/1/7"
    _, tx = check_signed(built, raw, out)
    assert abs(out["review"]["vsize"] - real_vsize(tx)) <= 8


def test_two_of_our_keys_sign_alone():
    """Two cosigners of this device (two accounts): both sign, no one else needed."""
    w = wallet("wsh", roots=(OURS, OURS, ALICE), paths=["m/48h/1h/0h/2h", "m/48h/1h/1h/2h", "m/48h/1h/0h/2h"])
    built = spend(w)
    raw = built.psbt.serialize()
    out = inprocess.sign_with_review(raw, MNEMONIC, network=NETWORK, wallets=registered(w))
    assert out["count"] == 2
    check_signed(built, raw, out, cosigner=None)


def test_foreign_input_left_alone():
    """An input of the wallet without our derivation is not signed, and said so."""
    w = VAULT["wsh"]
    built = spend(w, coins=((3, 60_000), (4, 50_000)), pay=80_000, fee=1_500)
    inp = built.psbt.inputs[1]
    inp.bip32_derivations = {k: v for k, v in inp.bip32_derivations.items() if v.fingerprint != OURS.my_fingerprint}
    out = inprocess.sign_with_review(built.psbt.serialize(), MNEMONIC, network=NETWORK, wallets=registered(w))
    assert out["count"] == 1 and out["review"]["signing"] == 1
    assert out["review"]["warnings"] == ["input 1 is not signed by this device"]


# --- outputs: what is change


def outputs_review(mutate, wallets=None, **kw):
    built = spend(**kw)
    mutate(built.psbt)
    return review(built.psbt.serialize(), wallets or registered(VAULT["wsh"]))


def test_change_to_another_registered_wallet_is_a_spend():
    other = VAULT["tr"]
    built = txbuild.build_spend([(VAULT["wsh"], 3, 60_000)], payee(), 40_000, 1_000, change=(other, 2))
    r = review(built.psbt.serialize(), registered(VAULT["wsh"], other))
    assert r["change"] == [] and len(r["spends"]) == 2
    assert r["warnings"] == ["output 1 pays to wallet W2, not the wallet the inputs come from"]


def test_single_sig_change_in_a_wallet_spend_is_a_spend():
    acct = txbuild.Account("p2wpkh", OURS.derive("m/84h/1h/0h").to_public(), OURS.my_fingerprint, "m/84h/1h/0h")
    built = txbuild.build_spend([(VAULT["wsh"], 3, 60_000)], payee(), 40_000, 1_000, change=(acct, 2))
    r = review(built.psbt.serialize(), registered(VAULT["wsh"]))
    assert r["change"] == []
    assert r["warnings"] == ["output 1 pays to this device's single-sig key at m/84h/1h/0h/1/2, not to wallet Vault"]


def test_wallet_change_in_a_single_sig_spend_is_a_spend():
    acct = txbuild.Account("p2wpkh", OURS.derive("m/84h/1h/0h").to_public(), OURS.my_fingerprint, "m/84h/1h/0h")
    built = txbuild.build_spend([(acct, 3, 60_000)], payee(), 40_000, 1_000, change=(VAULT["wsh"], 2))
    r = review(built.psbt.serialize(), registered(VAULT["wsh"]))
    assert r["wallet"] is None and r["change"] == []
    assert r["warnings"] == ["output 1 pays to wallet Vault, not the wallet the inputs come from"]


def test_change_at_index_above_a_million_is_a_spend():
    built = spend(change=1_000_001)
    r = review(built.psbt.serialize(), registered(VAULT["wsh"]))
    assert r["change"] == []
    assert r["warnings"] == ["output 1 pays to this device at an unusual path m/48h/1h/0h/2h/1/1000001 of wallet Vault"]


def test_change_at_hardened_index_is_a_spend():
    path = descriptors.parse_path(PATHS["wsh"]) + [1, H + 2]
    built = spend()
    out = built.psbt.outputs[1]
    out.bip32_derivations = {k: v for k, v in out.bip32_derivations.items() if v.fingerprint != OURS.my_fingerprint}
    out.bip32_derivations[OURS.derive(path).to_public().key] = DerivationPath(OURS.my_fingerprint, path)
    r = review(built.psbt.serialize(), registered(VAULT["wsh"]))
    assert r["change"] == []
    assert r["warnings"] == ["output 1 pays to this device at an unusual path m/48h/1h/0h/2h/1/2h of wallet Vault"]


def substituted(kind="wsh"):
    """The wallet with Bob's key replaced by Eve's, and the PSBT's derivation of
    Bob's key pointing at Eve's (same fingerprint and path)."""
    return wallet(kind, roots=(OURS, ALICE, EVE))


def swap_change_to_eve(p, keep_ours=True):
    evil = substituted()
    out = p.outputs[1]
    out.script_pubkey = evil.output(1, 2)
    out.witness_script = evil.scripts(1, 2).witness_script
    ders = {}
    for pub, der in out.bip32_derivations.items():
        if der.fingerprint == OURS.my_fingerprint and not keep_ours:
            continue
        if der.fingerprint == BOB.my_fingerprint:
            pub = evil.cosigners[2].pub(1, 2)
        ders[pub] = der
    out.bip32_derivations = ders


def test_cosigner_substitution_in_change_without_our_key_is_a_spend():
    built = spend()
    swap_change_to_eve(built.psbt, keep_ours=False)
    r = review(built.psbt.serialize(), registered(VAULT["wsh"]))
    assert r["change"] == []
    assert r["spends"][1] == {"address": substituted().address(1, 2, NETWORK), "amount_sat": 19_000}
    assert r["warnings"] == ["output 1 names keys of wallet Vault but is not one of its addresses"]


# --- refusals


def set_output_script(j, w, chain, idx):
    def f(p):
        p.outputs[j].script_pubkey = w.output(chain, idx)

    return f


def rederive_input(w, chain, idx):
    """Input 0 claims the wallet's keys at (chain, idx), scripts included."""

    def f(p):
        inp = p.inputs[0]
        inp.bip32_derivations = {}
        inp.taproot_bip32_derivations = {}
        inp.taproot_scripts = {}
        w._derivations(inp, w.scripts(chain, idx), chain, idx)
        if w.kind == "tr":
            sc = w.scripts(chain, idx)
            inp.taproot_scripts[sc.control_block] = sc.leaf_script.data + b"\xc0"

    return f


def our_key_at(steps):
    """Input 0's derivation of our key moved to origin + steps (key included)."""

    def f(p):
        inp = p.inputs[0]
        path = descriptors.parse_path(PATHS["wsh"]) + steps
        inp.bip32_derivations = {k: v for k, v in inp.bip32_derivations.items() if v.fingerprint != OURS.my_fingerprint}
        inp.bip32_derivations[OURS.derive(path).to_public().key] = DerivationPath(OURS.my_fingerprint, path)

    return f


def input_of(w):
    def f(p):
        evil = txbuild.build_spend([(w, 3, 60_000)], payee(), 40_000, 1_000)
        p.inputs[0] = evil.psbt.inputs[0]

    return f


def set_input(name, value, i=0):
    def f(p):
        setattr(p.inputs[i], name, value)

    return f


def other_prev_tx(p):
    p.inputs[0].non_witness_utxo = txbuild.funding_tx([(VAULT["wsh"].output(0, 3), 60_000)], tag=77)


def duplicate(p):
    p.inputs[1] = PSBT.parse(p.serialize()).inputs[0]


def foreign_coin_type(scope_of):
    def f(p):
        scope = scope_of(p)
        for pub, der in scope.bip32_derivations.items():
            if der.fingerprint == ALICE.my_fingerprint:
                der.derivation[1] = H  # coin type 0h: mainnet
    return f


def global_xpub(p):
    main = bip32.HDKey.from_seed(bytes(range(64)))  # mainnet version
    p.xpubs[main.derive("m/48h/0h/0h/2h").to_public()] = DerivationPath(main.my_fingerprint, [48 + H, H, H, 2 + H])


def main_xpub_text():
    text = base58.encode_check(bip32.HDKey.from_seed(bytes(range(64))).derive("m/48h/0h/0h/2h").to_public().serialize())
    return f"{text[:8]}...{text[-6:]}"


ORIGIN = "m/48h/1h/0h/2h"
NOT_WALLET = "but its script is not wallet Vault's at that path"
UNUSUAL = "is at an unusual path for wallet Vault (change 0 or 1, index up to 1000000)"
NO_PREV = "input 0: previous transaction (non_witness_utxo) missing; required for segwit v0 and legacy inputs"

# (id, wallet kind, PSBT options, mutation, expected REFUSED message)
REFUSALS = [
    ("change_script_of_another_index", "wsh", {}, set_output_script(1, VAULT["wsh"], 1, 6),
     f"output 1: claims this device's key at {ORIGIN}/1/2 {NOT_WALLET}"),
    ("cosigner_substitution_in_change", "wsh", {}, swap_change_to_eve,
     f"output 1: claims this device's key at {ORIGIN}/1/2 {NOT_WALLET}"),
    ("cosigner_substitution_in_taproot_change", "tr", {},
     set_output_script(1, substituted("tr"), 1, 2),
     f"output 1: claims this device's key at {PATHS['tr']}/1/2 {NOT_WALLET}"),
    ("input_claims_another_index", "wsh", {}, rederive_input(VAULT["wsh"], 0, 4),
     f"input 0: claims this device's key at {ORIGIN}/0/4 {NOT_WALLET}"),
    ("cosigner_substitution_in_input", "wsh", {}, input_of(substituted()),
     f"input 0: claims this device's key at {ORIGIN}/0/3 {NOT_WALLET}"),
    ("witness_script_differs", "wsh", {}, set_input("witness_script", VAULT["wsh"].scripts(0, 9).witness_script),
     "input 0: witness script is not wallet Vault's"),
    ("redeem_script_differs", "sh", {}, set_input("redeem_script", VAULT["sh"].scripts(0, 9).redeem_script),
     "input 0: redeem script is not wallet Vault's"),
    ("taproot_leaf_differs", "tr", {},
     set_input("taproot_scripts", {VAULT["tr"].scripts(0, 9).control_block: VAULT["tr"].scripts(0, 9).leaf_script.data + b"\xc0"}),
     "input 0: taproot leaf script is not wallet Vault's"),
    ("taproot_merkle_root_differs", "tr", {}, set_input("taproot_merkle_root", bytes(32)),
     "input 0: taproot merkle root is not wallet Vault's"),
    ("wsh_without_prev_tx", "wsh", {}, set_input("non_witness_utxo", None), NO_PREV),
    ("sh_wsh_without_prev_tx", "sh-wsh", {}, set_input("non_witness_utxo", None), NO_PREV),
    ("sh_without_prev_tx", "sh", {},
     lambda p: (set_input("witness_utxo", p.inputs[0].non_witness_utxo.vout[0])(p), set_input("non_witness_utxo", None)(p)),
     NO_PREV),
    ("prev_tx_of_another_txid", "wsh", {}, other_prev_tx, "input 0: previous transaction does not match its txid"),
    ("duplicate_input", "wsh", {"coins": ((3, 60_000), (4, 50_000)), "pay": 80_000}, duplicate,
     "input 1 spends the same coin as input 0"),
    ("sighash_none", "wsh", {}, set_input("sighash_type", 2), "input 0: sighash type 0x02 is not allowed (only ALL)"),
    ("sighash_acp_taproot", "tr", {}, set_input("sighash_type", 0x81),
     "input 0: sighash type 0x81 is not allowed (only ALL)"),
    ("outputs_exceed_inputs", "wsh", {}, lambda p: setattr(p.outputs[0], "value", 200_000),
     "outputs (219000 sat) exceed inputs (60000 sat)"),
    ("index_above_a_million", "wsh", {"coins": ((1_000_001, 60_000),)}, lambda p: None,
     f"input 0: this device's key at {ORIGIN}/0/1000001 {UNUSUAL}"),
    ("hardened_index", "wsh", {}, our_key_at([0, H + 3]), f"input 0: this device's key at {ORIGIN}/0/3h {UNUSUAL}"),
    ("path_too_long", "wsh", {}, our_key_at([0, 3, 7]), f"input 0: this device's key at {ORIGIN}/0/3/7 {UNUSUAL}"),
    ("chain_two", "wsh", {}, our_key_at([2, 3]), f"input 0: this device's key at {ORIGIN}/2/3 {UNUSUAL}"),
    ("input_key_of_another_network", "wsh", {}, foreign_coin_type(lambda p: p.inputs[0]),
     f"input 0: key [{ALICE.my_fingerprint.hex()}] m/48h/0h/0h/2h/0/3 is for another network (coin type 0h)"),
    ("output_key_of_another_network", "wsh", {}, foreign_coin_type(lambda p: p.outputs[1]),
     f"output 1: key [{ALICE.my_fingerprint.hex()}] m/48h/0h/0h/2h/1/2 is for another network (coin type 0h)"),
    ("global_xpub_of_another_network", "wsh", {}, global_xpub,
     f"global xpub {main_xpub_text()} is for another network"),
]


@pytest.mark.parametrize("name,kind,opts,mutate,message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(name, kind, opts, mutate, message):
    built = spend(VAULT[kind], **opts)
    mutate(built.psbt)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(built.psbt.serialize(), registered(VAULT[kind]))
    assert (e.value.name, e.value.message) == ("REFUSED", message)


def test_inputs_of_two_wallets():
    built = txbuild.build_spend([(VAULT["wsh"], 3, 60_000), (VAULT["tr"], 4, 50_000)], payee(), 100_000, 1_000)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(built.psbt.serialize(), registered(VAULT["wsh"], VAULT["tr"]))
    assert (e.value.name, e.value.message) == ("REFUSED", "inputs 0 and 1 belong to different wallets (Vault, W2)")


def test_single_sig_and_wallet_inputs():
    acct = txbuild.Account("p2wpkh", OURS.derive("m/84h/1h/0h").to_public(), OURS.my_fingerprint, "m/84h/1h/0h")
    built = txbuild.build_spend([(acct, 3, 60_000), (VAULT["wsh"], 4, 50_000)], payee(), 100_000, 1_000)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(built.psbt.serialize(), registered(VAULT["wsh"]))
    assert (e.value.name, e.value.message) == (
        "REFUSED", "inputs 0 and 1 belong to different wallets (single-sig account 0, Vault)")


@pytest.mark.parametrize("others", [("tr",), ()])
def test_unregistered_wallet_input(others):
    # A cosigner whose device has not registered the vault: told so, with the
    # command, not that the script fails to match (which reads like tampering).
    built = spend()
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(built.psbt.serialize(), registered(*(VAULT[k] for k in others)))
    assert (e.value.name, e.value.message) == (
        "REFUSED", f"input 0: spends from a multisig wallet (3 keys, this device's at {ORIGIN}/0/3) that is not "
                   "registered on this device: register it first (amanat wallet register) and the officer "
                   "approves it here")


@pytest.mark.parametrize("limits,pay,fee,message", [
    (None, 10_000, 5_000, "fee 5000 sat is above the device's limit of 10% of the amount sent"),
    ({"fee_percent_tenths": 25, "fee_max_sat": 1_000_000}, 40_000, 1_200,
     "fee 1200 sat is above the device's limit of 2.5% of the amount sent"),
    ({"fee_percent_tenths": 1000, "fee_max_sat": 4_000}, 40_000, 5_000,
     "fee 5000 sat is above the device's limit of 4000 sat"),
], ids=["default_percent", "tenths", "max_sat"])
def test_fee_above_limits(limits, pay, fee, message):
    built = spend(pay=pay, fee=fee)
    with pytest.raises(inprocess.DeviceCodeError) as e:
        review(built.psbt.serialize(), registered(VAULT["wsh"]), limits=limits)
    assert (e.value.name, e.value.message) == ("REFUSED", message)


def test_fee_at_the_limit_passes():
    built = spend(pay=10_000, fee=1_000)
    r = review(built.psbt.serialize(), registered(VAULT["wsh"]))
    assert r["fee_sat"] == 1_000 and r["warnings"] == ["fee is 10.0% of the amount sent"]

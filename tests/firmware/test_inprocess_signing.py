"""embit signing on the MicroPython VM with the device crypto, checked by libbitcoinkernel.

PSBTs are built on the host (embit on CPython, libsecp256k1), signed by the
firmware's signer under the real `micropython` binary, finalized on the host,
and every input is run through Bitcoin Core's script interpreter.
"""

import pytest
from embit import bip32, bip39, script
from embit.networks import NETWORKS
from embit.psbt import PSBT

from amanat import finalize, inprocess, kernel, mpy, txbuild

MNEMONIC = "all all all all all all all all all all all all"
NETWORK = "test"


@pytest.fixture(scope="module")
def accounts():
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NETWORKS[NETWORK]["xprv"])
    out = {}
    for kind in txbuild.PURPOSE:
        path = txbuild.account_path(kind, NETWORK)
        out[kind] = txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)
    return out


def payee():
    return script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())


def sign_and_check(built):
    signed, count = inprocess.sign(built.psbt.serialize(), MNEMONIC, network=NETWORK)
    tx = finalize.finalize(PSBT.parse(signed))
    kernel.verify_transaction(tx, built.spent)
    return signed, count, tx


@pytest.mark.parametrize("kind", list(txbuild.PURPOSE))
def test_single_input_type(accounts, kind):
    acct = accounts[kind]
    built = txbuild.build_spend([(acct, 3, 50_000)], payee(), 30_000, 500, change=(acct, 1))
    signed, count, _ = sign_and_check(built)
    assert count == 1
    if kind == "p2tr":
        # BIP371: the key-path signature is left in PSBT_IN_TAP_KEY_SIG, not finalized
        inp = PSBT.parse(signed).inputs[0]
        assert len(inp.unknown[b"\x13"]) == 64
        assert not inp.final_scriptwitness


def test_mixed_inputs_with_foreign_input(accounts):
    """All four types in one transaction; an input of another wallet is left untouched."""
    other_root = bip32.HDKey.from_seed(bytes(range(64)), version=NETWORKS[NETWORK]["xprv"])
    path = txbuild.account_path("p2wpkh", NETWORK)
    foreign = txbuild.Account("p2wpkh", other_root.derive(path).to_public(), other_root.my_fingerprint, path)
    coins = [(accounts[k], i, 20_000 + i) for i, k in enumerate(txbuild.PURPOSE)]
    coins.append((foreign, 0, 10_000))
    built = txbuild.build_spend(coins, payee(), 60_000, 1_000, change=(accounts["p2wpkh"], 2))
    signed, count = inprocess.sign(built.psbt.serialize(), MNEMONIC, network=NETWORK)
    assert count == 4
    psbt = PSBT.parse(signed)
    assert not psbt.inputs[4].partial_sigs
    # the foreign owner signs too; then the whole transaction must be valid
    psbt.sign_with(other_root)
    tx = finalize.finalize(psbt)
    kernel.verify_transaction(tx, built.spent)


def test_kernel_rejects_a_forged_signature(accounts):
    """The script check is real: a signature from the wrong key fails it."""
    acct = accounts["p2wpkh"]
    built = txbuild.build_spend([(acct, 0, 40_000)], payee(), 30_000, 500)
    signed, _, tx = sign_and_check(built)
    psbt = PSBT.parse(signed)
    [(pub, sig)] = psbt.inputs[0].partial_sigs.items()
    # replace with a valid-looking signature by another key over the same sighash
    other = bip32.HDKey.from_seed(bytes(64)).key
    psbt.inputs[0].partial_sigs[pub] = other.sign(psbt.sighash(0)).serialize() + b"\x01"
    with pytest.raises(kernel.ScriptCheckError):
        kernel.verify_transaction(finalize.finalize(psbt), built.spent)


def test_refuses_psbt_with_no_input_of_ours(accounts):
    other_root = bip32.HDKey.from_seed(bytes(range(64)), version=NETWORKS[NETWORK]["xprv"])
    path = txbuild.account_path("p2wpkh", NETWORK)
    foreign = txbuild.Account("p2wpkh", other_root.derive(path).to_public(), other_root.my_fingerprint, path)
    built = txbuild.build_spend([(foreign, 0, 10_000)], payee(), 5_000, 500)
    with pytest.raises(mpy.MicroPythonError, match="no input of this PSBT belongs to this device"):
        inprocess.sign(built.psbt.serialize(), MNEMONIC, network=NETWORK)


def test_device_xpubs_match_libsecp256k1(accounts):
    paths = [a.path for a in accounts.values()]
    dev = inprocess.xpubs(MNEMONIC, paths, network=NETWORK)
    for acct in accounts.values():
        assert dev["xpubs"][acct.path] == acct.xpub.to_base58()
    assert dev["fingerprint"] == accounts["p2wpkh"].fingerprint.hex()

"""Coordinator files: the cosigner key export, and registered wallets as
descriptor, BIP-129 (its own vectors), Coldcard/Sparrow text and Electrum
files; each read back by this project's own parser where one exists."""

import json

import pytest
from embit import bip32
from embit.networks import NETWORKS

import fake_client as fc
from amanat import exports, policy, txbuild
from conftest import ROOT

VECTORS = json.loads((ROOT / "tests" / "vectors" / "bip129_bsms_descriptor_records.json").read_text())["vectors"]
NET = "regtest"
ROOTS = [fc.root_key(), fc.root_key(fc.OTHER_MNEMONIC), bip32.HDKey.from_seed(bytes(range(64)),
                                                                               version=NETWORKS[NET]["xprv"])]
PATH = "m/48h/1h/0h/2h"


def vault(kind="wsh", sorted_=True):
    return policy.canonical(txbuild.Multisig(kind, 2, sorted_, [txbuild.cosigner(r, PATH) for r in ROOTS]).descriptor())


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["mode"].split()[0])
def test_bsms_matches_bip129(vector):
    desc = policy.from_bsms(vector["record"], vector["network"])
    # the same record, in the h notation this project writes paths in
    assert exports.bsms(policy.canonical(desc), vector["network"]) == vector["record"].replace("'", "h") + "\n"
    assert policy.load(vector["record"]).descriptor == policy.canonical(desc)


def test_bsms_first_address_is_checked():
    rec = VECTORS[0]["record"].rsplit("\n", 1)[0] + "\nbc1qhs4u273g4azq7kqqpe6vh5wfhasfmrq7nheyzsnq77humd7rwtkqagvakf"
    with pytest.raises(policy.PolicyError, match="first address"):
        policy.load(rec)


@pytest.mark.parametrize("kind", ["wsh", "sh-wsh", "sh"])
def test_wallet_files_read_back(kind):
    desc = vault(kind)
    assert policy.load(exports.bsms(desc, NET)).descriptor == desc
    text = exports.multisig_text("Vault", desc)
    assert policy.load(text).descriptor == desc and policy.load(text).name == "Vault"
    lines = exports.descriptor_file(desc).splitlines()
    assert policy.canonical(lines[0]) == desc
    ms = policy.parse(desc)
    assert policy.parse(lines[1]).address(NET, 4) == ms.address(NET, 4)
    assert policy.parse(lines[2]).address(NET, 4) == ms.address(NET, 4, change=True)


def test_electrum_file_carries_every_origin():
    desc = vault()
    wallet = json.loads(exports.electrum_wallet("Vault", desc, NET))
    assert wallet["wallet_type"] == "2of3"
    keys = [wallet[f"x{n}/"] for n in (1, 2, 3)]
    assert {k["root_fingerprint"] for k in keys} == {r.my_fingerprint.hex() for r in ROOTS}
    assert all(k["derivation"] == "m/48'/1'/0'/2'" and k["xpub"].startswith("Vpub") for k in keys)


@pytest.mark.parametrize("fmt", ["sparrow", "electrum"])
def test_formats_refuse_what_they_cannot_hold(fmt):
    with pytest.raises(exports.ExportError, match="sortedmulti"):
        exports.wallet_file(fmt, "T", vault("tr", sorted_=False), NET)


def test_cosigner_exports():
    root = ROOTS[0]
    paths = exports.cosigner_paths(NET, 0)
    assert paths == {"p2sh": "m/45h", "p2sh_p2wsh": "m/48h/1h/0h/1h", "p2wsh": "m/48h/1h/0h/2h"}
    xpubs = {p: root.derive(p).to_public().to_base58() for p in paths.values()}
    cc = json.loads(exports.cosigner_json(root.my_fingerprint, NET, 0, xpubs))
    assert cc["xfp"] == root.my_fingerprint.hex().upper() and cc["p2wsh_deriv"] == "m/48'/1'/0'/2'"
    assert cc["p2wsh"] == xpubs["m/48h/1h/0h/2h"]
    lines = exports.cosigner_descriptors(root.my_fingerprint, NET, 0, xpubs).splitlines()
    key = lines[2].split(": ", 1)[1]
    assert key == f"[{root.my_fingerprint.hex()}/48h/1h/0h/2h]{xpubs['m/48h/1h/0h/2h']}"
    assert policy.parse_key(key).origin == tuple(txbuild.parse_path(PATH))

"""amanat.descriptors: the host's one parser of BIP32 paths, key expressions
and descriptor checksums, and its one hardened-step rule."""

import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import fake_client as fc
from amanat import cli, descriptors, policy
from amanat.descriptors import HARDENED, DescriptorError
from amanat.policy import PolicyError
from conftest import VECTORS

BIP380 = json.loads((VECTORS / "bip380_389_390_descriptor_test_vectors.json").read_text())["bips"]["380"]
ROOT = fc.root_key()
FP = ROOT.my_fingerprint.hex()
XPUB = ROOT.derive("m/84h/1h/0h").to_public().to_base58()

paths = st.lists(st.integers(0, 2**32 - 1), max_size=10)


@given(paths)
def test_paths_round_trip(path):
    text = descriptors.format_path(path)
    assert text == "m" or text.startswith("m/")
    assert descriptors.parse_path(text) == path
    assert descriptors.normalize_path(text) == text


@given(paths, st.data())
def test_every_typed_hardened_mark_means_the_same(path, data):
    parts = ["m"]
    for i in path:
        mark = data.draw(st.sampled_from(descriptors.TYPED_MARKS))
        parts.append(f"{i - HARDENED}{mark}" if i >= HARDENED else str(i))
    typed = "/".join(parts)
    assert descriptors.parse_path(typed) == path
    assert descriptors.normalize_path(typed) == descriptors.format_path(path)


@given(st.text(max_size=12))
def test_any_text_is_a_path_or_a_descriptor_error(text):
    try:
        path = descriptors.parse_path(text)
    except DescriptorError:
        return
    assert descriptors.parse_path(descriptors.format_path(path)) == path


@pytest.mark.parametrize("text", ["84h/1h", "m/84x", "m//1", "m/-1", "m/2147483648", "m/1hh", "m/\u0663", "m/1 h"])
def test_bad_typed_paths(text):
    with pytest.raises(DescriptorError):
        descriptors.parse_path(text)


def test_H_is_refused_in_key_expressions_and_descriptors():
    hex_key = ROOT.derive("m/84h/1h/0h/0/0").key.sec().hex()
    for mark in ("h", "'"):
        assert descriptors.parse_key(f"[{FP}/84{mark}/1{mark}/0{mark}]{XPUB}/0/*").origin == (
            84 + HARDENED, 1 + HARDENED, HARDENED)
    with pytest.raises(DescriptorError, match="bad path element '84H'"):
        descriptors.parse_key(f"[{FP}/84H/1H/0H]{XPUB}/0/*")
    with pytest.raises(DescriptorError):
        descriptors.parse_single_key(f"wpkh([{FP}/84H/1H/0H/0/0]{hex_key})")
    with pytest.raises(PolicyError, match="key: bad path element '48H'"):
        policy.parse_key(f"[{FP}/48H/1H/0H/2H]{XPUB}/<0;1>/*")
    assert descriptors.parse_single_key(f"wpkh([{FP}/84'/1h/0'/0/0]{hex_key})").key.origin[-1] == 0


unhardened = st.integers(0, HARDENED - 1)
keys = st.builds(
    descriptors.Key,
    fingerprint=st.none() | st.binary(min_size=4, max_size=4),
    origin=st.lists(st.integers(0, 2**32 - 1), max_size=6).map(tuple),
    key=st.just(XPUB),
    steps=st.lists(unhardened, max_size=3).map(tuple),
    multipath=st.none() | st.tuples(unhardened, unhardened),
    wildcard=st.booleans(),
)


@given(keys)
def test_key_expressions_round_trip(key):
    if key.fingerprint is None:
        key = descriptors.Key(None, (), key.key, key.steps, key.multipath, key.wildcard)  # no origin without one
    text = key.text()
    assert descriptors.parse_key(text) == key
    origin, sep, rest = text.partition("]")
    if sep:  # ' marks hardened steps as well as h
        assert descriptors.parse_key(origin.replace("h", "'") + sep + rest) == key


def test_bip380_checksums():
    for v in BIP380["checksum_tests"]:
        if v["expected_valid"]:
            assert descriptors.strip_checksum(v["descriptor"]) == v["descriptor"].split("#")[0], v
            if "#" in v["descriptor"]:
                assert descriptors.with_checksum(v["descriptor"].split("#")[0]) == v["descriptor"], v
        else:
            with pytest.raises(DescriptorError):
                descriptors.strip_checksum(v["descriptor"])


def test_bip380_key_expressions():
    for v in BIP380["key_expressions_invalid"]:
        with pytest.raises(DescriptorError):
            descriptors.parse_key(v["key_expression"])
    for v in BIP380["key_expressions_valid"]:
        d, k = v["description"], v["key_expression"]
        if "public key" in d.lower() and "Uncompressed" not in d and "hardened derivation" not in d:
            assert descriptors.parse_key(k).text() == k.replace("'", "h"), v
        else:  # private, uncompressed and hardened-after-xpub keys: not what the host handles
            with pytest.raises(DescriptorError):
                descriptors.parse_key(k)


def test_key_expression_parts():
    k = descriptors.parse_key(f"[{FP}/48h/1h/0h/2h]{XPUB}/7/<0;1>/*")
    assert (k.fingerprint.hex(), k.path, k.steps, k.multipath, k.wildcard) == (FP, "m/48h/1h/0h/2h", (7,), (0, 1), True)
    assert descriptors.parse_key(f"{XPUB}/**") == descriptors.parse_key(f"{XPUB}/<0;1>/*")
    assert k.pubkey(5, 1) == ROOT.derive("m/84h/1h/0h/7/1/5").key
    with pytest.raises(DescriptorError, match="an index is needed"):
        k.pubkey()


def test_coin_type():
    assert descriptors.coin_type("main") == 0
    assert {descriptors.coin_type(n) for n in ("test", "testnet4", "signet", "regtest")} == {1}


# ---------------------------------------------------------------- typed paths, sent in h notation


@pytest.fixture
def device(monkeypatch):
    return fc.install(monkeypatch, fc.FakeDevice("/dev/ttyUSB0"))["/dev/ttyUSB0"]


@pytest.mark.parametrize("typed", ["m/84H/1H/0H", "m/84'/1'/0'", "m/84h/1H/0'"])
def test_amanat_xpub_takes_any_mark_and_sends_h(device, typed):
    result = CliRunner().invoke(cli.main, ["xpub", typed, "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["xpub"] == XPUB and got["path"] == "m/84h/1h/0h"
    assert got["key"] == f"[{got['fingerprint']}/84h/1h/0h]{XPUB}"
    assert ("get_xpub", "m/84h/1h/0h") in device.calls


def test_amanat_xpub_refuses_a_bad_path_before_asking_the_device(device):
    result = CliRunner().invoke(cli.main, ["xpub", "m/84x"])
    assert result.exit_code == 2 and "bad path element '84x'" in result.output
    assert not [c for c in device.calls if c[0] == "get_xpub"]

"""The device's small parsers (paths, requests, PINs) under hypothesis: a
typed error or a correct value, nothing else."""

import json

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import VECTORS, firmware_on_cpython

firmware_on_cpython()
from signer import keyexpr, rpc  # noqa: E402
from signer.errors import BadParams, BadRequest  # noqa: E402
from signer.storage import check_pin_format  # noqa: E402

H = 0x80000000


@given(st.text(max_size=60))
def test_any_path_text(text):
    try:
        path = keyexpr.parse_path(text)
    except BadParams:
        return
    assert len(path) <= keyexpr.MAX_DEPTH and all(0 <= i < 2**32 for i in path)
    assert keyexpr.parse_path(keyexpr.format_path(path)) == path


@given(st.lists(st.tuples(st.integers(0, H - 1), st.sampled_from(["", "h", "'"])), max_size=8))
def test_paths_round_trip(steps):
    text = "/".join(["m"] + ["%d%s" % (i, mark) for i, mark in steps])
    path = keyexpr.parse_path(text)
    assert path == [i + (H if mark else 0) for i, mark in steps]
    assert keyexpr.format_path(path) == text.replace("'", "h")


@pytest.mark.parametrize("text", ["m/84H/1h/0h", "m/84h/1/0H", "84h/1h", "m/", "m/-1", "m/2147483648",
                                  "m/1hh", "m/0x10", "m/" + "/".join(["1"] * 9)])
def test_malformed_paths(text):
    # BIP380: h or ' mark a hardened step, H does not (the device's one rule)
    with pytest.raises(BadParams):
        keyexpr.parse_path(text)


@given(st.text(max_size=60))
def test_any_key_expression(text):
    try:
        e = keyexpr.split_key("key", text)
    except BadParams as err:
        assert err.message.startswith("key")  # names the key at fault
        return
    assert len(e.fingerprint) == 4 and len(e.origin) <= keyexpr.MAX_ORIGIN_DEPTH
    assert e.rest == "" or e.rest.startswith("/")
    again = "[%s%s]%s%s" % (e.fingerprint.hex(), "".join("/" + keyexpr.format_steps([i]) for i in e.origin),
                            e.key, e.rest)
    assert keyexpr.split_key("key", again).origin == e.origin


def _bip380(which):
    doc = json.loads((VECTORS / "bip380_389_390_descriptor_test_vectors.json").read_text())
    return [c["key_expression"] for c in doc["bips"]["380"]["key_expressions_" + which] if "]" in c["key_expression"]]


@pytest.mark.parametrize("text", _bip380("valid"))
def test_bip380_valid_key_origins(text):
    e = keyexpr.split_key("key", text)
    origin = text[text.index("/") : text.index("]")].replace("'", "h")
    assert e.fingerprint == bytes.fromhex(text[1:9]) and "/" + keyexpr.format_steps(e.origin) == origin
    keyexpr.parse_steps([s for s in e.rest.split("/")[1:] if s not in WILDCARDS], "path")


@pytest.mark.parametrize("text", _bip380("invalid"))
def test_bip380_invalid_key_origins(text):
    """Refused by the origin rule, or (a hardened mark H after the key) by
    the same step rule the callers read the rest with."""
    with pytest.raises(BadParams):
        e = keyexpr.split_key("key", text)
        keyexpr.parse_steps([s for s in e.rest.split("/")[1:] if s not in WILDCARDS], "path")


WILDCARDS = ("*", "*h", "*'")  # BIP380's ranged steps (the device reads them where it allows them)


@given(st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.text(max_size=20)
                    | st.binary(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=12))
def test_any_request_shape(obj):
    try:
        rid, method, params = rpc.parse_request(cbor2.dumps(obj))
    except BadRequest:
        return
    assert isinstance(method, str) and isinstance(params, dict) and 1 <= rid < 2**32


@given(st.text(max_size=20))
def test_pin_format(pin):
    ok = check_pin_format(pin) is None
    assert ok == (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12)

"""The device's small parsers (paths, requests, PINs) under hypothesis: a
typed error or a correct value, nothing else."""

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from conftest import firmware_on_cpython

firmware_on_cpython()
from signer import rpc, scripts  # noqa: E402
from signer.errors import BadParams, BadRequest  # noqa: E402
from signer.storage import check_pin_format  # noqa: E402

H = 0x80000000


@given(st.text(max_size=60))
def test_any_path_text(text):
    try:
        path = scripts.parse_path(text)
    except BadParams:
        return
    assert len(path) <= scripts.MAX_DEPTH and all(0 <= i < 2**32 for i in path)
    assert scripts.parse_path(scripts.format_path(path)) == path


@given(st.lists(st.tuples(st.integers(0, H - 1), st.booleans()), max_size=8))
def test_paths_round_trip(steps):
    text = "/".join(["m"] + ["%d%s" % (i, "h" if hard else "") for i, hard in steps])
    assert scripts.parse_path(text) == [i + (H if hard else 0) for i, hard in steps]


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

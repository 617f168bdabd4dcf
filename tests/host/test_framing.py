"""The host's message helpers. The frame layer itself is tested, on both sides and
across them, in tests/firmware/test_cbor_framing.py."""

import binascii

import cbor2
import pytest
from hypothesis import given, settings, strategies as st

from amanat.framing import FrameReader, ProtocolError, decode_message, encode, encode_request


def test_request_round_trip():
    frame = encode_request(7, "get_xpub", {"path": "m/84h/0h/0h"})
    assert frame[:8] == b"AM\x01\x00" + (len(frame) - 12).to_bytes(4, "big")
    assert frame[-4:] == binascii.crc32(frame[:-4]).to_bytes(4, "big")
    [payload] = FrameReader().feed(frame, 0.0)
    # Keys in the order the protocol lists them.
    assert payload == cbor2.dumps({"id": 7, "method": "get_xpub", "params": {"path": "m/84h/0h/0h"}})
    assert frame == encode(payload)


@pytest.mark.parametrize("bad_id", [0, 2**32, -1])
def test_request_id_range(bad_id):
    with pytest.raises(ValueError, match="id"):
        encode_request(bad_id, "ping", {})


def test_payload_too_long():
    encode(bytes(8192))
    with pytest.raises(ValueError):
        encode(bytes(8193))
    with pytest.raises(ValueError):
        encode_request(1, "psbt_chunk", {"offset": 0, "data": bytes(8192)})


GOOD = [
    {"id": 1, "result": {"busy": None}},
    {"id": 2**32 - 1, "result": None},
    {"id": 3, "error": {"code": 4, "message": "path: not a BIP32 path"}},
    {"id": None, "error": {"code": 1, "message": "bad crc"}},
]


@pytest.mark.parametrize("msg", GOOD)
def test_decode_good(msg):
    assert decode_message(cbor2.dumps(msg)) == msg


BAD = [
    (b"", "not CBOR"),
    (b"\xff", "not CBOR"),
    (b"\xa1\x62id", "not CBOR"),
    (cbor2.dumps([1, 2]), "not a map"),
    (cbor2.dumps({"result": 1}), "id"),
    (cbor2.dumps({"id": "1", "result": 1}), "id"),
    (cbor2.dumps({"id": True, "result": 1}), "id"),
    (cbor2.dumps({"id": 1.0, "result": 1}), "id"),
    (cbor2.dumps({"id": 1}), "exactly one"),
    (cbor2.dumps({"id": 1, "result": 1, "error": {"code": 1, "message": "x"}}), "exactly one"),
    (cbor2.dumps({"id": 1, "error": "oops"}), "error"),
    (cbor2.dumps({"id": 1, "error": {"code": "1", "message": "x"}}), "error"),
    (cbor2.dumps({"id": 1, "error": {"code": False, "message": "x"}}), "error"),
    (cbor2.dumps({"id": 1, "error": {"code": 1, "message": b"x"}}), "error"),
    (cbor2.dumps({"id": 1, "error": {"code": 1}}), "error"),
]


@pytest.mark.parametrize("payload,reason", BAD, ids=[b[0].hex() or "empty" for b in BAD])
def test_decode_bad(payload, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode_message(payload)


def with_byte_set(args):
    msg, i, b = args
    data = bytearray(cbor2.dumps(msg))
    data[i % len(data)] = b
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=40),
                      st.tuples(st.sampled_from(GOOD), st.integers(0, 100), st.integers(0, 255)).map(with_byte_set)))
def test_decode_only_raises_protocol_error(data):
    try:
        msg = decode_message(data)
    except ProtocolError:
        return
    assert isinstance(msg, dict) and "id" in msg

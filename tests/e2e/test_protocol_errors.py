"""Bad input on the serial line: every case gets a typed error (or is
dropped as the protocol says) and the device keeps answering."""

import hashlib
import time
import zlib

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amanat import framing
from amanat.errors import DeviceError
from amanat.transport import Transport


def _frame(payload: bytes, version=1, flags=0, length=None, crc=None) -> bytes:
    n = len(payload) if length is None else length
    head = b"AM" + bytes([version, flags]) + n.to_bytes(4, "big") + payload
    c = zlib.crc32(head) if crc is None else crc
    return head + c.to_bytes(4, "big")


@pytest.fixture
def line(auto_emu):
    t = Transport(auto_emu.port, timeout=5)
    yield t
    t.close()


def _answers(t: Transport, count: int, timeout=20.0) -> list[dict]:
    out, deadline = [], time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out += t.receive()
    return out


def _still_up(t: Transport):
    assert t.call("ping")["busy"] is None


def _error_of(msg: dict) -> str:
    return framing_names[msg["error"]["code"]]


framing_names = DeviceError.NAMES


def test_garbage_is_skipped(line):
    line.ser.write(b"\x00garbage without any magic\xff" * 10)
    _still_up(line)


@pytest.mark.parametrize("frame,why", [
    (_frame(cbor2.dumps({"id": 1, "method": "ping"}), crc=0), "bad crc"),
    (_frame(b"\xa0", version=2), "version"),
    (_frame(b"\xa0", flags=1), "flags"),
    (_frame(b"", length=8193), "too long"),
])
def test_bad_frames(line, frame, why):
    line.ser.write(frame)
    [msg] = _answers(line, 1)
    assert msg["id"] is None and _error_of(msg) == "BAD_FRAME" and why in msg["error"]["message"]
    _still_up(line)


@pytest.mark.parametrize("payload,name", [
    (b"\xff\x00", "BAD_REQUEST"),                                              # not CBOR
    (cbor2.dumps([1, "ping"]), "BAD_REQUEST"),                                  # not a map
    (cbor2.dumps({"method": "ping"}), "BAD_REQUEST"),                           # no id
    (cbor2.dumps({"id": 0, "method": "ping"}), "BAD_REQUEST"),                  # id out of range
    (cbor2.dumps({"id": 7, "method": 5}), "BAD_REQUEST"),                       # method not text
    (cbor2.dumps({"id": 7, "method": "ping", "params": []}), "BAD_REQUEST"),    # params not a map
    (cbor2.dumps({"id": 7, "method": "selfdestruct"}), "UNKNOWN_METHOD"),
    (cbor2.dumps({"id": 7, "method": "get_xpub", "params": {"path": 84}}), "BAD_PARAMS"),
    (cbor2.dumps({"id": 7, "method": "get_xpub", "params": {}}), "BAD_PARAMS"),
    (cbor2.dumps({"id": 7, "method": "get_xpub", "params": {"path": "m/0", "x": 1}}), "BAD_PARAMS"),
    (cbor2.dumps({"id": 7, "method": "get_descriptors", "params": {"account": -1}}), "BAD_PARAMS"),
    (cbor2.dumps({"id": 7, "method": "get_descriptors", "params": {"account": True}}), "BAD_PARAMS"),
    (cbor2.dumps({"id": 7, "method": "psbt_chunk", "params": {"offset": 0, "data": "text"}}), "BAD_PARAMS"),
    (cbor2.dumps({"id": 7, "method": "ping", "params": {}, "extra": 1}), "BAD_REQUEST"),
    (cbor2.dumps({"id": 7, "method": "info", "params": {"n": 1.5}}), "BAD_REQUEST"),  # floats are not in the protocol
])
def test_bad_requests(line, payload, name):
    line.ser.write(_frame(payload))
    [msg] = _answers(line, 1)
    assert _error_of(msg) == name, msg
    _still_up(line)


def test_truncated_frame_expires(line):
    whole = _frame(cbor2.dumps({"id": 9, "method": "ping"}))
    line.ser.write(whole[:7])
    time.sleep(2.3)
    _still_up(line)


def test_host_disconnects_mid_frame(auto_emu):
    """A host that goes away in the middle of a frame leaves the device ready."""
    t = Transport(auto_emu.port)
    t.ser.write(_frame(cbor2.dumps({"id": 3, "method": "get_xpub", "params": {"path": "m/1"}}))[:15])
    t.close()
    time.sleep(2.3)
    t = Transport(auto_emu.port)
    try:
        _still_up(t)
        assert t.call("get_xpub", {"path": "m/1"})["xpub"].startswith("tpub")
    finally:
        t.close()


def test_upload_rules(line):
    with pytest.raises(DeviceError) as e:
        line.call("psbt_chunk", {"offset": 0, "data": b"x"})
    assert e.value.name == "UPLOAD"
    with pytest.raises(DeviceError) as e:
        line.call("psbt_begin", {"length": (1 << 20) + 1})
    assert e.value.name == "BAD_PARAMS"
    assert line.call("psbt_begin", {"length": 10})["chunk_size"] == 4096
    with pytest.raises(DeviceError) as e:
        line.call("psbt_chunk", {"offset": 5, "data": b"x"})
    assert "offset" in e.value.message
    line.call("psbt_chunk", {"offset": 0, "data": b"abc"})
    with pytest.raises(DeviceError) as e:
        line.call("psbt_end")
    assert "incomplete" in e.value.message
    with pytest.raises(DeviceError) as e:
        line.call("psbt_chunk", {"offset": 3, "data": b"x" * 8})
    assert e.value.name == "UPLOAD"
    with pytest.raises(DeviceError) as e:
        line.call("sign_psbt", {"sha256": bytes(32)})
    assert e.value.name == "UPLOAD"
    with pytest.raises(DeviceError) as e:
        line.call("psbt_read", {"offset": 0, "size": 10})
    assert e.value.name == "UPLOAD"
    _still_up(line)


def test_the_first_chunk_may_come_with_psbt_begin(line):
    limits = line.call("info")["limits"]
    assert limits["chunk_bytes"] == 4096
    data = bytes(range(256)) * 20  # 5120 bytes: one chunk in psbt_begin, the rest after it
    assert line.call("psbt_begin", {"length": len(data), "data": data[:4096]}) == {"chunk_size": 4096, "received": 4096}
    line.call("psbt_chunk", {"offset": 4096, "data": data[4096:]})
    assert line.call("psbt_end")["sha256"] == hashlib.sha256(data).digest()
    with pytest.raises(DeviceError) as e:  # more than a chunk: refused, as psbt_chunk refuses it
        line.call("psbt_begin", {"length": 5000, "data": bytes(4097)})
    assert e.value.name == "BAD_PARAMS" and "longer than 4096" in e.value.message
    with pytest.raises(DeviceError) as e:  # more than the PSBT's length
        line.call("psbt_begin", {"length": 10, "data": bytes(11)})
    assert e.value.name == "UPLOAD"
    _still_up(line)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_fuzz_payloads(line, payload):
    """Any payload in a good frame: an error answer or a result, never silence."""
    line.ser.write(_frame(payload))
    msgs = _answers(line, 1)
    assert len(msgs) == 1
    _still_up(line)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.binary(max_size=40),
    st.builds(lambda n: _frame(b"\xa0")[:n], st.integers(0, 12)),
    st.just(b"AM"),
), max_size=6))
def test_fuzz_line_noise(line, pieces):
    """Any byte soup, then a good request: the good request is answered.

    The soup may open a frame whose header claims up to 8192 bytes; zeros
    fill it (its CRC then fails, a BAD_FRAME) so that no timing is involved."""
    line.ser.write(b"".join(pieces) + bytes(8192 + 12))
    rid = line.send("ping")
    assert line.wait(rid, 20, strict=False)["busy"] is None


def test_requests_in_one_read_are_served_in_order_while_busy(manual_emu):
    """A long request and more requests in the same write: the others are
    answered (ping) or turned away (BUSY) while the long one waits."""
    from embit.descriptor.checksum import add_checksum

    t = Transport(manual_emu.port, timeout=5)
    try:
        fp = t.call("info")["fingerprint"].hex()
        xpub = t.call("get_xpub", {"path": "m/84h/1h/0h"})["xpub"]
        desc = add_checksum(f"wpkh([{fp}/84h/1h/0h]{xpub}/0/1)")
        frames = [framing.encode_request(11, "display_address", {"descriptor": desc}),
                  framing.encode_request(12, "ping", {}),
                  framing.encode_request(13, "psbt_begin", {"length": 10})]
        t.ser.write(b"".join(frames))
        got = _answers(t, 2)
        assert [m["id"] for m in got] == [12, 13]
        assert got[0]["result"] == {"busy": "display_address", "progress": None}
        assert _error_of(got[1]) == "BUSY"
        with manual_emu.debuglink() as dl:
            dl.wait_screen("display_address")
            dl.approve()
        [done] = _answers(t, 1)
        assert done["id"] == 11 and done["result"]["address"].startswith("bcrt1")
    finally:
        t.close()


def test_long_echoes_still_fit_a_frame(line):
    line.ser.write(_frame(cbor2.dumps({"id": 5, "method": "\x00" * 2100})))
    [msg] = _answers(line, 1)
    assert _error_of(msg) == "UNKNOWN_METHOD" and len(msg["error"]["message"]) < 200
    line.ser.write(_frame(cbor2.dumps({"id": 6, "method": "get_xpub", "params": {"\x00" * 2100: 1}})))
    [msg] = _answers(line, 1)
    assert _error_of(msg) == "BAD_PARAMS"
    _still_up(line)


def test_a_dead_request_takes_its_screen_down(manual_emu):
    """If the request behind a prompt fails while it waits, the prompt goes."""
    from embit.descriptor.checksum import add_checksum

    t = Transport(manual_emu.port, timeout=5)
    try:
        fp = t.call("info")["fingerprint"].hex()
        xpub = t.call("get_xpub", {"path": "m/84h/1h/0h"})["xpub"]
        rid = t.send("display_address", {"descriptor": add_checksum(f"wpkh([{fp}/84h/1h/0h]{xpub}/0/2)")})
        with manual_emu.debuglink() as dl:
            dl.wait_screen("display_address")
            dl.reject()
            with pytest.raises(DeviceError):
                t.wait(rid, 5)
            assert dl.screen() is None
    finally:
        t.close()


def test_a_burst_of_requests_gets_every_answer(line):
    """200 small requests in one write: each gets its answer, none is lost
    (the device takes what one read brings, the rest waits in the line)."""
    ids = list(range(1, 201))
    # the smallest requests there are: ~30 bytes, 17 or more of them in one read of the line
    burst = b"".join(_frame(cbor2.dumps({"id": rid, "method": "ping"})) for rid in ids)
    line.ser.write(burst)
    got = _answers(line, 200, timeout=60)
    assert sorted(m["id"] for m in got) == ids
    assert all("result" in m for m in got)
    _still_up(line)


def test_an_answer_lost_on_the_line_is_given_again(auto_emu):
    """A request sent again (same id, same bytes) gets the answer it got the
    first time, without a second prompt on the device."""
    before = len([s for s in auto_emu.screens() if s["screen"] == "sign_message"])
    t = Transport(auto_emu.port, timeout=10)
    try:
        rid = t.send("sign_message", {"message": b"once", "path": "m/84h/1h/0h/0/0"})
        frame = t.sent[rid]
        first = t.wait(rid, 20)
        t.sent[rid] = frame  # as if the answer had been lost: the same frame again
        t.resend(rid)
        again = t.wait(rid, 20)
    finally:
        t.close()
    assert first == again and first["signature"]
    assert len([s for s in auto_emu.screens() if s["screen"] == "sign_message"]) == before + 1


def test_a_host_that_leaves_mid_upload_leaves_the_device_idle(auto_emu):
    t = Transport(auto_emu.port, timeout=5)
    t.call("psbt_begin", {"length": 10_000})
    t.call("psbt_chunk", {"offset": 0, "data": bytes(4096)})
    t.close()  # the host goes away
    time.sleep(12)  # more than the device's 10 s without a chunk
    t = Transport(auto_emu.port, timeout=5)
    try:
        assert t.call("ping") == {"busy": None, "progress": None}  # no upload in progress any more
        with pytest.raises(DeviceError) as e:
            t.call("psbt_chunk", {"offset": 4096, "data": bytes(10)})
        assert e.value.name == "UPLOAD" and "no upload in progress" in e.value.message
    finally:
        t.close()

"""The device's CBOR codec and frame layer against cbor2 and the host's framing.

The firmware modules run on CPython first; a batch of the same cases then runs
under the real MicroPython binary and must give the same answers.
"""

import binascii
import json
import random

import cbor2
import pytest
from hypothesis import given, settings, strategies as st

from amanat import framing as host_framing
from amanat import mpy
from conftest import firmware_on_cpython

firmware_on_cpython()

from signer import cbor, framing  # noqa: E402

INT_EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
INT_EDGES += [-1 - n for n in INT_EDGES]


# --- CBOR ---------------------------------------------------------------------


ints = st.one_of(st.sampled_from(INT_EDGES), st.integers(-(2**64), 2**64 - 1))
scalars = st.one_of(st.none(), st.booleans(), ints, st.binary(max_size=80), st.text(max_size=20))
keys = st.one_of(ints, st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=25,
)


def depth(x):
    if isinstance(x, (list, tuple)):
        return 1 + max(map(depth, x), default=0)
    if isinstance(x, dict):
        return 1 + max(map(depth, list(x) + list(x.values())), default=0)
    return 0


def in_subset(x, level=0):
    """x is a value the device codec must accept (a decoded cbor2 value)."""
    if x is None or isinstance(x, (bool, bytes, str)):
        return True
    if isinstance(x, int):
        return -(2**64) <= x < 2**64
    if isinstance(x, list):
        return level < cbor.MAX_DEPTH and all(in_subset(v, level + 1) for v in x)
    if isinstance(x, dict):
        return level < cbor.MAX_DEPTH and all(
            (isinstance(k, str) or (isinstance(k, int) and not isinstance(k, bool)))
            and in_subset(k) and in_subset(v, level + 1)
            for k, v in x.items()
        )
    return False


def same(a, b):
    # == alone would take True for 1 and (1,) for [1]; the encodings tell them apart.
    return cbor2.dumps(a) == cbor2.dumps(b)


def check_against_cbor2(data):
    """The device decodes data as cbor2 does, or raises CBORError; nothing else."""
    try:
        ours, err = cbor.loads(data), None
    except cbor.CBORError as e:
        ours, err = None, e
    try:
        ref, ref_ok = cbor2.loads(data), True
    except Exception:
        ref, ref_ok = None, False
    if err is None:
        assert ref_ok and same(ours, ref), data.hex()
    elif ref_ok and in_subset(ref) and cbor2.dumps(ref) == data:
        # Canonical, in the subset, no duplicate keys, no tags: must decode.
        pytest.fail(f"rejected {data.hex()}: {err}")
    return err


@settings(max_examples=300, deadline=None)
@given(x=values)
def test_dumps_and_loads_match_cbor2(x):
    if depth(x) > cbor.MAX_DEPTH:
        with pytest.raises(cbor.CBORError, match="nested too deep"):
            cbor.dumps(x)
        return
    enc = cbor2.dumps(x)
    assert cbor.dumps(x) == enc
    assert same(cbor.loads(enc), cbor2.loads(enc))
    assert same(cbor.loads(bytearray(enc)), x)
    assert same(cbor.loads(memoryview(enc)), x)


def test_integer_edges_and_order():
    for n in INT_EDGES:
        assert cbor.dumps(n) == cbor2.dumps(n)
        assert cbor.loads(cbor2.dumps(n)) == n
    d = {"b": 1, 2: [True, False, None], "a": b"\x00"}
    assert cbor.dumps(d) == cbor2.dumps(d)
    assert list(cbor.loads(cbor.dumps(d))) == ["b", 2, "a"]
    assert cbor.dumps(bytearray(b"ab")) == cbor.dumps(memoryview(b"ab")) == cbor2.dumps(b"ab")


def test_non_shortest_heads_are_accepted():
    assert cbor.loads(bytes.fromhex("1b0000000000000001")) == 1
    assert cbor.loads(bytes.fromhex("5900024142")) == b"AB"
    assert cbor.loads(bytes.fromhex("b8010102")) == {1: 2}


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40))
def test_random_bytes(data):
    check_against_cbor2(data)


def mutate(rng, enc):
    b = bytearray(enc)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        i = rng.randrange(len(b) + 1)
        if op == 0 and i < len(b):
            b[i] = rng.randrange(256)
        elif op == 1 and i < len(b):
            b[i] ^= 1 << rng.randrange(8)
        elif op == 2:
            b.insert(i, rng.randrange(256))
        elif op == 3:
            del b[i : i + rng.randint(1, 4)]
        else:
            del b[i:]
    return bytes(b)


@settings(max_examples=300, deadline=None)
@given(x=values, seed=st.integers(0, 2**32))
def test_mutated_encodings(x, seed):
    check_against_cbor2(mutate(random.Random(seed), cbor2.dumps(x)))


HIGH = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
        0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]


def text_item(raw):
    return bytes([0x78, len(raw)]) + raw if len(raw) > 23 else bytes([0x60 | len(raw)]) + raw


# Lead bytes with the second bytes where the valid range narrows.
EDGE_PAIRS = [bytes([a, b]) for a in (0xC1, 0xE0, 0xED, 0xF0, 0xF4, 0xF5)
              for b in (0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0)] + [b"\x80\x80"]
utf8ish = st.lists(st.one_of(st.sampled_from(HIGH).map(lambda b: bytes([b])), st.sampled_from(EDGE_PAIRS)),
                   max_size=10).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(raw=utf8ish)
def test_utf8_validation_matches_cpython(raw):
    try:
        want = raw.decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(cbor.CBORError, match="utf-8"):
            cbor.loads(text_item(raw))
        # The check itself, not CPython's decoder behind it, must refuse:
        # MicroPython's decoder lets these through.
        with pytest.raises(cbor.CBORError, match="utf-8"):
            cbor._check_utf8(memoryview(raw), 0, len(raw))
    else:
        assert cbor.loads(text_item(raw)) == want


TRAIL_EDGES = (0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF)


def utf8_edges(leads=range(0x80, 0x100), thirds=(0x7F, 0x80, 0xBF, 0xC0)):
    """Every lead byte with the boundary values after it, and their prefixes."""
    out = set()
    for lead in leads:
        for b2 in TRAIL_EDGES:
            for b3 in thirds:
                for b4 in thirds:
                    seq = bytes([lead, b2, b3, b4])
                    out.update(seq[:n] for n in range(1, 5))
    return sorted(out)


def test_utf8_edges_exhaustively():
    for raw in utf8_edges():
        try:
            raw.decode("utf-8")
            ok = True
        except UnicodeDecodeError:
            ok = False
        try:
            cbor._check_utf8(memoryview(raw), 0, len(raw))
            assert ok, raw.hex()
        except cbor.CBORError:
            assert not ok, raw.hex()


BAD = [
    ("f93c00", "floats"), ("fa3f800000", "floats"), ("fb3ff0000000000000", "floats"),
    ("c24105", "tags"), ("d9d9f705", "tags"),
    ("5f4161ff", "indefinite"), ("7f6161ff", "indefinite"), ("9fff", "indefinite"),
    ("bfff", "indefinite"), ("ff", "indefinite"), ("1f", "indefinite"),
    ("f7", "undefined"), ("f0", "simple"), ("f820", "simple"), ("1c", "reserved"),
    ("81" * 17 + "00", "nested too deep"), ("a10181" * 9 + "00", "nested too deep"),
    ("0000", "trailing"), ("8001", "trailing"),
    ("", "truncated"), ("1901", "truncated"), ("6261", "truncated"), ("8201", "truncated"),
    ("a101", "truncated"), ("a20101", "truncated"), ("1b00000000", "truncated"),
    ("61ff", "utf-8"), ("62c080", "utf-8"), ("63eda080", "utf-8"), ("64f4908080", "utf-8"),
    ("62e282", "utf-8"), ("61c2", "utf-8"), ("63e08080", "utf-8"), ("64f0808080", "utf-8"),
    ("5bffffffffffffffff", "truncated"), ("7bffffffffffffffff00", "truncated"),
    ("9bffffffffffffffff00", "truncated"), ("bbffffffffffffffff0000", "truncated"),
    ("5a0001000041", "truncated"), ("9a00010000" + "00" * 100, "truncated"),
    ("a201010102", "duplicate"), ("a1f501", "map key"), ("a1416101", "map key"), ("a18001", "map key"),
]


@pytest.mark.parametrize("hexdata,reason", BAD, ids=[b[0][:20] or "empty" for b in BAD])
def test_rejected(hexdata, reason):
    data = bytes.fromhex(hexdata)
    with pytest.raises(cbor.CBORError, match=reason):
        cbor.loads(data)


def test_depth_limit_is_sixteen():
    assert cbor.loads(bytes.fromhex("81" * 16 + "00")) == eval("[" * 16 + "0" + "]" * 16)
    deep = 0
    for _ in range(16):
        deep = {"k": deep}
    assert cbor.loads(cbor.dumps(deep)) == deep
    with pytest.raises(cbor.CBORError, match="nested too deep"):
        cbor.dumps([deep])


def test_unencodable():
    cyclic = []
    cyclic.append(cyclic)
    for obj, reason in ((1.5, "floats"), (2**64, "out of range"), (-(2**64) - 1, "out of range"),
                        ({b"k": 1}, "map key"), ({True: 1}, "map key"), ({None: 1}, "map key"),
                        ({1, 2}, "unsupported type: set"), (cyclic, "nested too deep"),
                        ("\ud800", "unicode")):
        with pytest.raises(cbor.CBORError, match=reason):
            cbor.dumps(obj)


# --- framing, device and host -------------------------------------------------


MODS = {"device": framing, "host": host_framing}


class Reader:
    """A FrameReader of either side, driven with times in milliseconds."""

    def __init__(self, side):
        self.mod, self.r = MODS[side], MODS[side].FrameReader()
        # The device counts milliseconds (ticks), the host seconds.
        self.clock = (lambda ms: ms) if side == "device" else (lambda ms: ms / 1000)
        # Watch the buffer each time it is parsed: it must stay within one frame.
        parse = self.r._parse

        def watched(out):
            assert len(self.r._buf) <= framing.HEADER_SIZE + framing.MAX_PAYLOAD + 4
            parse(out)

        self.r._parse = watched

    def _norm(self, items):
        out = []
        for it in items:
            if isinstance(it, self.mod.FrameError):
                out.append(("error", str(it)))
            else:
                assert type(it) is bytes
                out.append(it)
        return out

    def feed(self, data, ms=0):
        return self._norm(self.r.feed(data, self.clock(ms)))

    def expire(self, ms):
        return self._norm(self.r.expire(self.clock(ms)))


PAIRS = [(w, r) for w in MODS for r in MODS]


def header(n, version=1, flags=0):
    return b"AM" + bytes([version, flags]) + n.to_bytes(4, "big")


def test_constants_and_known_frame():
    assert (framing.MAGIC, framing.VERSION, framing.HEADER_SIZE, framing.MAX_PAYLOAD, framing.FRAME_TIMEOUT_MS) == (
        b"AM", 1, 8, 8192, 2000)
    body = header(3) + b"\xa0\x01\x02"
    assert framing.encode(b"\xa0\x01\x02") == body + binascii.crc32(body).to_bytes(4, "big")
    with pytest.raises(ValueError):
        framing.encode(bytes(framing.MAX_PAYLOAD + 1))


@settings(max_examples=100, deadline=None)
@given(payload=st.one_of(st.binary(max_size=300), st.integers(0, framing.MAX_PAYLOAD).map(bytes)))
def test_device_and_host_encode_agree(payload):
    assert framing.encode(payload) == host_framing.encode(payload)


# Garbage without "A" or "M" never forms a magic, even next to a frame.
garbage = st.binary(max_size=30).map(lambda b: b.replace(b"A", b"").replace(b"M", b""))


@pytest.mark.parametrize("writer,reader", PAIRS)
@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(st.tuples(garbage, st.binary(max_size=200)), max_size=6),
    tail=garbage,
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_stream_split_anywhere(writer, reader, frames, tail, cuts):
    stream = b"".join(g + MODS[writer].encode(p) for g, p in frames) + tail
    r = Reader(reader)
    got, last = [], 0
    for c in sorted({min(c, len(stream)) for c in cuts}) + [len(stream)]:
        got += r.feed(stream[last:c])
        last = c
    assert got == [p for _, p in frames]


@pytest.mark.parametrize("side", MODS)
def test_partial_magic_and_big_feeds(side):
    r = Reader(side)
    big = [bytes([i]) * framing.MAX_PAYLOAD for i in range(3)]
    stream = b"xA" + b"A".join(framing.encode(p) for p in big) + b"A"
    assert r.feed(stream) == big
    assert r.feed(b"MA") == []  # "A" kept, "AM" is a magic, then "A"
    assert r.expire(5000) == [("error", "frame timed out")]
    n = len(stream)
    for i in [*range(40), *range(40, n - 40, 97), *range(n - 40, n)]:
        r = Reader(side)
        assert r.feed(stream[:i]) + r.feed(stream[i:]) == big


@pytest.mark.parametrize("side", MODS)
def test_bad_crc_then_good_frame(side):
    s, r = MODS[side], Reader(side)
    for flip in (1, 4, 5, 9):  # crc, payload (the frame ends with 5 + 4 bytes)
        bad = bytearray(s.encode(b"hello"))
        bad[-flip] ^= 0x40
        assert r.feed(bytes(bad) + s.encode(b"next")) == [("error", "bad crc"), b"next"]


@pytest.mark.parametrize("side", MODS)
@pytest.mark.parametrize(
    "head,reason",
    [(header(8193), "payload too long"), (header(2**32 - 1), "payload too long"),
     (header(1, version=2), "unsupported version"), (header(1, version=0), "unsupported version"),
     (header(1, flags=1), "unsupported flags"), (header(1, flags=0x80), "unsupported flags")],
)
def test_bad_header_resynchronises(side, head, reason):
    s, r = MODS[side], Reader(side)
    # The rest of a dropped frame is scanned for a magic like any garbage.
    assert r.feed(head + b"junk" + s.encode(b"ok")) == [("error", reason), b"ok"]
    # A magic inside the bad header is found.
    assert r.feed(head[:2] + head[2:4] + s.encode(b"ok2")) == [("error", reason), b"ok2"]


@pytest.mark.parametrize("side", MODS)
def test_truncated_frame_times_out(side):
    frame = MODS[side].encode(b"payload")
    r = Reader(side)
    assert r.feed(frame[:5], 1000) == []
    assert r.expire(3000) == []  # exactly the timeout: still waiting
    assert r.feed(frame[5:9], 3000) == []
    assert r.expire(5001) == [("error", "frame timed out")]
    assert r.expire(9000) == []
    assert r.feed(frame, 9000) == [b"payload"]
    # Without an expire() call in between, the next feed notices the gap.
    # (2 s, and 1 ms for this frame's 19 bytes at 115200 baud.)
    assert r.feed(frame[:-1], 10000) == []
    assert r.feed(frame, 12002) == [("error", "frame timed out"), b"payload"]
    # Within the timeout the frame completes.
    assert r.feed(frame[:3], 20000) + r.feed(frame[3:], 22001) == [b"payload"]
    # A stray "A" is not a frame: it goes silently.
    assert r.feed(b"zzA", 30000) == [] and r.expire(40000) == []


@pytest.mark.parametrize("side", MODS)
def test_a_damaged_length_does_not_swallow_the_frames_after_it(side):
    """A length byte lost on the line makes a 7-byte frame claim 1,906 bytes;
    requests sent again within the timeout keep the line busy, so a rule on
    the gap between bytes would wait for all of them. Counted from the
    frame's first byte (2 s, and 166 ms for 1,918 bytes at 115200 baud) it
    ends, and the next request is read."""
    s, r = MODS[side], Reader(side)
    good = s.encode(b"request")
    damaged = good[:4] + good[5:]  # a zero of the length dropped
    assert int.from_bytes(damaged[4:8], "big") == 1906
    assert r.feed(damaged[:8], 0) == []
    for t in (0, 600, 1200, 1800, 2166):
        assert r.feed(good, t) == []  # swallowed: part of the claimed frame
    assert r.feed(good, 2167) == [("error", "frame timed out"), b"request"]


# --- the real MicroPython -----------------------------------------------------


def random_obj(rng, level=0):
    kind = rng.randrange(9 if level < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice(INT_EDGES)
    if kind == 2:
        return rng.randrange(-(2**64), 2**64) >> rng.randrange(64)
    if kind == 3:
        return rng.randbytes(rng.choice([0, 1, 23, 24, 255, 256, 300]))
    if kind == 4:
        return "".join(chr(rng.choice([0x41, 0xE9, 0x20AC, 0x1F600, 0xFFFD, 0])) for _ in range(rng.randrange(30)))
    if kind == 5:
        return rng.choice(["", "id", "method"])
    if kind == 6:
        return tuple(random_obj(rng, level + 1) for _ in range(rng.randrange(4)))
    if kind == 7:
        return [random_obj(rng, level + 1) for _ in range(rng.randrange(5))]
    return {rng.choice([rng.randrange(-300, 300), "k%d" % rng.randrange(50)]): random_obj(rng, level + 1)
            for _ in range(rng.randrange(5))}


def canon(outcome):
    # MicroPython's dict does not keep insertion order: compare maps sorted.
    if outcome[0] != "ok":
        return outcome
    return ["ok", cbor2.dumps(cbor2.loads(bytes.fromhex(outcome[1])), canonical=True).hex()]


def one_key_maps(x):
    if isinstance(x, dict):
        return len(x) < 2 and all(map(one_key_maps, x.values()))
    return all(map(one_key_maps, x)) if isinstance(x, (list, tuple)) else True


def device_outcome(data):
    """What the device codec makes of data on CPython: the re-encoding, or the error."""
    try:
        return ["ok", cbor.dumps(cbor.loads(data)).hex()]
    except cbor.CBORError as e:
        return ["error", str(e)]


def stream_case(rng):
    payloads = [rng.randbytes(rng.choice([0, 1, 100, 1000])) for _ in range(rng.randrange(1, 5))]
    parts, want = [], []
    for p in payloads:
        parts.append(bytes(rng.randrange(0x4E, 256) for _ in range(rng.randrange(5))))  # no A, no M
        frame = bytearray(framing.encode(p))
        bad = rng.randrange(4)
        if bad == 0:
            frame[-1] ^= 1
            want.append(["e", "bad crc"])
        elif bad == 1:
            frame[3] = 1
            want.append(["e", "unsupported flags"])
            frame = frame[:8]  # the body alone could hold a magic
        else:
            want.append(["p", p.hex()])
        parts.append(bytes(frame))
    stream = b"".join(parts)
    cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.randrange(6)))
    return [stream.hex(), cuts], want


MPY_BATCH = """
import json, time
from binascii import hexlify, unhexlify
from signer import cbor, framing

def hx(b):
    return hexlify(b).decode()

res = {"dumps": [hx(cbor.dumps(o)) for o in OBJS], "loads": [], "frames": [], "encode": []}
for h in json.loads(CBOR):
    try:
        res["loads"].append(["ok", hx(cbor.dumps(cbor.loads(unhexlify(h))))])
    except cbor.CBORError as e:
        res["loads"].append(["error", str(e)])
for h, cuts in json.loads(STREAMS):
    data = unhexlify(h)
    r, out, last = framing.FrameReader(), [], 0
    for c in cuts + [len(data)]:
        for it in r.feed(data[last:c], 0):
            out.append(["e", str(it)] if isinstance(it, framing.FrameError) else ["p", hx(it)])
        last = c
    res["frames"].append(out)
for h in json.loads(PAYLOADS):
    res["encode"].append(hx(framing.encode(unhexlify(h))))
cyclic = []
cyclic.append(cyclic)
res["unencodable"] = []
for obj in (1.5, 2**64, -(2**64) - 1, {b"k": 1}, {True: 1}, {1, 2}, cyclic, [True, 1, False, 0]):
    try:
        res["unencodable"].append(hx(cbor.dumps(obj)))
    except cbor.CBORError as e:
        res["unencodable"].append(str(e))
# ticks wrap around: a frame started just before the wrap.
r = framing.FrameReader()
t0 = time.ticks_add(0, -500)
r.feed(b"AM", t0)
res["wrap"] = [len(r.expire(time.ticks_add(0, 1000))), [str(e) for e in r.expire(time.ticks_add(0, 1600))]]
print(json.dumps(res))
"""


def test_batch_under_micropython():
    rng = random.Random(7)
    objs = [random_obj(rng) for _ in range(300)]
    encs = [cbor2.dumps(o) for o in objs]
    fuzz = [mutate(rng, e) for e in encs] + [rng.randbytes(rng.randrange(12)) for _ in range(100)]
    fuzz += [bytes.fromhex(h) for h, _ in BAD]
    pieces = [bytes([b]) for b in HIGH] + EDGE_PAIRS
    fuzz += [text_item(b"".join(rng.choice(pieces) for _ in range(rng.randrange(6)))) for _ in range(300)]
    fuzz += [text_item(raw) for raw in utf8_edges((0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5), (0x80, 0xC0))]
    streams = [stream_case(rng) for _ in range(40)]
    payloads = [rng.randbytes(n) for n in (0, 1, 255, 8192)]
    code = "OBJS = [%s]\nCBOR = %r\nSTREAMS = %r\nPAYLOADS = %r\n" % (
        ",\n".join(map(ascii, objs)),
        json.dumps([e.hex() for e in encs + fuzz]),
        json.dumps([s for s, _ in streams]),
        json.dumps([p.hex() for p in payloads]),
    ) + MPY_BATCH
    # 8 MB: forty one-frame readers (8 KB each) and the results split a 2 MB heap
    [res] = mpy.run_json(code, heap=8 << 20)
    for obj, enc, got in zip(objs, encs, res["dumps"]):
        assert canon(["ok", got]) == canon(["ok", enc.hex()])
        if one_key_maps(obj):
            assert got == enc.hex()
    assert [canon(o) for o in res["loads"][: len(encs)]] == [canon(["ok", e.hex()]) for e in encs]
    for data, got in zip(fuzz, res["loads"][len(encs):]):
        check_against_cbor2(data)
        assert canon(got) == canon(device_outcome(data)), data.hex()
    assert res["frames"] == [want for _, want in streams]
    assert res["encode"] == [host_framing.encode(p).hex() for p in payloads]
    assert res["wrap"] == [0, ["frame timed out"]]
    assert res["unencodable"] == ["floats not supported", "integer out of range", "integer out of range",
                                  "map key must be int or text", "map key must be int or text",
                                  "unsupported type: set", "nested too deep", "84f501f400"]


def test_a_receiver_with_a_smaller_limit_drops_longer_frames():
    """The device takes requests up to its own limit (app.REQUEST_MAX_PAYLOAD,
    4608 bytes): a longer frame is "payload too long", the next one is read."""
    from signer import app

    r = framing.FrameReader(app.REQUEST_MAX_PAYLOAD)
    big, ok = b"\x00" * (app.REQUEST_MAX_PAYLOAD + 1), b"\x01" * app.REQUEST_MAX_PAYLOAD
    out = r.feed(framing.encode(big) + framing.encode(ok), 0)
    assert [str(x) for x in out[:1]] == ["payload too long"] and out[-1] == ok
    # the largest psbt_chunk request fits
    chunk = cbor.dumps({"id": 2**31, "method": "psbt_chunk", "params": {"offset": 2**20, "data": b"x" * 4096}})
    assert len(chunk) <= app.REQUEST_MAX_PAYLOAD

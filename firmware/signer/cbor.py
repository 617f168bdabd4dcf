"""CBOR (RFC 8949) for the wire protocol: the subset of docs/protocol.md.

Integers up to 64 bits, byte and text strings, arrays, maps with int or text
keys, true/false/null; definite lengths, nesting up to MAX_DEPTH. Encoding uses
shortest heads and keeps dict order, so it matches cbor2.dumps byte for byte.
Decoding works on a memoryview with an offset; every length is checked against
the remaining input before anything is read or allocated.
"""

MAX_DEPTH = 16
_INT_LIMIT = 1 << 64


class CBORError(ValueError):
    pass


# --- encoding ---------------------------------------------------------------


def dumps(obj):
    # The bytearray itself: a bytes() copy of a 4 KB answer needs a second
    # 4 KB block of the heap at the moment it is most fragmented.
    out = bytearray()
    _encode(out, obj, 0)
    return out


def _head(out, major, n):
    if n < 24:
        out.append(major << 5 | n)
    elif n < 0x100:
        out.append(major << 5 | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(major << 5 | 25)
        out.extend(n.to_bytes(2, "big"))
    elif n < 0x100000000:
        out.append(major << 5 | 26)
        out.extend(n.to_bytes(4, "big"))
    else:
        out.append(major << 5 | 27)
        out.extend(n.to_bytes(8, "big"))


def _is_int(x):
    # bool is an int subclass on CPython but not on MicroPython.
    return isinstance(x, int) and not isinstance(x, bool)


def _encode(out, obj, depth):
    if obj is None:
        out.append(0xF6)
    elif obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif _is_int(obj):
        if obj >= 0:
            if obj >= _INT_LIMIT:
                raise CBORError("integer out of range")
            _head(out, 0, obj)
        else:
            if obj < -_INT_LIMIT:
                raise CBORError("integer out of range")
            _head(out, 1, -1 - obj)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _head(out, 2, len(obj))
        out.extend(obj)
    elif isinstance(obj, str):
        try:
            b = obj.encode("utf-8")
        except UnicodeError:
            raise CBORError("text is not valid unicode")
        _head(out, 3, len(b))
        out.extend(b)
    elif isinstance(obj, (list, tuple, dict)):
        if depth >= MAX_DEPTH:
            raise CBORError("nested too deep")
        if isinstance(obj, dict):
            _head(out, 5, len(obj))
            for k, v in obj.items():
                if not (isinstance(k, str) or _is_int(k)):
                    raise CBORError("map key must be int or text")
                _encode(out, k, depth + 1)
                _encode(out, v, depth + 1)
        else:
            _head(out, 4, len(obj))
            for v in obj:
                _encode(out, v, depth + 1)
    elif isinstance(obj, float):
        raise CBORError("floats not supported")
    else:
        raise CBORError("unsupported type: " + type(obj).__name__)


# --- decoding ---------------------------------------------------------------


def loads(data):
    mv = memoryview(data)
    end = len(mv)
    obj, pos = _decode(mv, 0, end, 0)
    if pos != end:
        raise CBORError("trailing bytes after the item")
    return obj


_SIMPLE = {20: False, 21: True, 22: None}


def _decode(mv, pos, end, depth):
    if pos >= end:
        raise CBORError("truncated")
    ib = mv[pos]
    pos += 1
    major = ib >> 5
    ai = ib & 31
    if major == 7:
        if ai in _SIMPLE:
            return _SIMPLE[ai], pos
        if ai == 23:
            raise CBORError("undefined not supported")
        if 25 <= ai <= 27:
            raise CBORError("floats not supported")
        if ai == 31:
            raise CBORError("indefinite length not supported")
        raise CBORError("simple values not supported")
    if major == 6:
        raise CBORError("tags not supported")
    if ai < 24:
        n = ai
    elif ai < 28:
        size = 1 << (ai - 24)
        if end - pos < size:
            raise CBORError("truncated")
        n = int.from_bytes(mv[pos : pos + size], "big")
        pos += size
    elif ai == 31:
        raise CBORError("indefinite length not supported")
    else:
        raise CBORError("reserved additional information")

    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major <= 3:
        if n > end - pos:
            raise CBORError("truncated")
        if major == 2:
            return bytes(mv[pos : pos + n]), pos + n
        _check_utf8(mv, pos, pos + n)
        try:
            return str(mv[pos : pos + n], "utf-8"), pos + n
        except UnicodeError:
            raise CBORError("invalid utf-8 in text")

    if depth >= MAX_DEPTH:
        raise CBORError("nested too deep")
    if major == 4:
        # Each item takes at least one byte: refuse counts the input cannot hold.
        if n > end - pos:
            raise CBORError("truncated")
        items = []
        for _ in range(n):
            v, pos = _decode(mv, pos, end, depth + 1)
            items.append(v)
        return items, pos
    # major 5, a map
    if 2 * n > end - pos:
        raise CBORError("truncated")
    d = {}
    for _ in range(n):
        if pos >= end:
            raise CBORError("truncated")
        if mv[pos] >> 5 not in (0, 1, 3):
            raise CBORError("map key must be int or text")
        k, pos = _decode(mv, pos, end, depth + 1)
        if k in d:
            raise CBORError("duplicate map key")
        d[k], pos = _decode(mv, pos, end, depth + 1)
    return d, pos


def _check_utf8(mv, pos, end):
    # MicroPython's str() accepts surrogates, overlong forms and code points
    # above U+10FFFF; check strictly here, as CPython and cbor2 do.
    while pos < end:
        b = mv[pos]
        pos += 1
        if b < 0x80:
            continue
        lo, hi = 0x80, 0xBF
        if 0xC2 <= b <= 0xDF:
            n = 1
        elif 0xE0 <= b <= 0xEF:
            n = 2
            if b == 0xE0:
                lo = 0xA0
            elif b == 0xED:
                hi = 0x9F
        elif 0xF0 <= b <= 0xF4:
            n = 3
            if b == 0xF0:
                lo = 0x90
            elif b == 0xF4:
                hi = 0x8F
        else:
            raise CBORError("invalid utf-8 in text")
        if end - pos < n or not lo <= mv[pos] <= hi:
            raise CBORError("invalid utf-8 in text")
        for i in range(pos + 1, pos + n):
            if mv[i] & 0xC0 != 0x80:
                raise CBORError("invalid utf-8 in text")
        pos += n

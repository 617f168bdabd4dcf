"""DER encoding of ECDSA signatures, following libsecp256k1 byte for byte.

The parser accepts exactly what secp256k1_ecdsa_signature_parse_der accepts:
strict DER lengths and integer padding, with the one laxness of that parser
kept on purpose: an integer that is negative or does not fit in 256 bits, or
that is >= N, is not an error but parses as 0 (a signature that will never
verify).
"""

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _read_len(der, pos, end):
    # -> (length, new pos) or None; secp256k1_der_read_len.
    if pos >= end:
        return None
    b1 = der[pos]
    pos += 1
    if b1 == 0xFF:
        return None
    if b1 & 0x80 == 0:
        return b1, pos
    if b1 == 0x80:
        return None  # indefinite length
    left = b1 & 0x7F
    if left > end - pos:
        return None
    if der[pos] == 0:
        return None  # not the shortest encoding
    if left > 8:
        return None  # more than a size_t can hold (64-bit library)
    n = 0
    while left:
        n = (n << 8) | der[pos]
        pos += 1
        left -= 1
    if n > end - pos:
        return None
    if n < 128:
        return None  # should have used the short form
    return n, pos


def _read_int(der, pos, end):
    # -> (value, new pos) or None; secp256k1_der_parse_integer.
    if pos == end or der[pos] != 0x02:
        return None
    got = _read_len(der, pos + 1, end)
    if got is None:
        return None
    n, pos = got
    if n == 0 or n > end - pos:
        return None
    first = der[pos]
    if first == 0x00 and n > 1 and der[pos + 1] & 0x80 == 0:
        return None  # excessive 0x00 padding
    if first == 0xFF and n > 1 and der[pos + 1] & 0x80 == 0x80:
        return None  # excessive 0xFF padding
    overflow = first & 0x80
    if first == 0:
        pos += 1
        n -= 1
    if n > 32:
        overflow = 1
    value = 0
    if not overflow:
        value = int.from_bytes(der[pos : pos + n], "big") if n else 0
        if value >= N:
            value = 0
    return value, pos + n


def parse(der):
    """(r, s) from a DER signature, or None when libsecp256k1 rejects it."""
    end = len(der)
    if end == 0 or der[0] != 0x30:
        return None
    got = _read_len(der, 1, end)
    if got is None:
        return None
    n, pos = got
    if n != end - pos:
        return None
    got = _read_int(der, pos, end)
    if got is None:
        return None
    r, pos = got
    got = _read_int(der, pos, end)
    if got is None:
        return None
    s, pos = got
    if pos != end:
        return None
    return r, s


def _int(v):
    # Minimal DER integer body of a 256-bit unsigned value (kept as stored,
    # even when >= N, like libsecp256k1's serializer).
    b = v.to_bytes(33, "big")
    i = 0
    while i < 32 and b[i] == 0 and b[i + 1] < 0x80:
        i += 1
    return b[i:]


def serialize(r, s):
    rb = _int(r)
    sb = _int(s)
    return (
        bytes((0x30, 4 + len(rb) + len(sb), 0x02, len(rb)))
        + rb
        + bytes((0x02, len(sb)))
        + sb
    )

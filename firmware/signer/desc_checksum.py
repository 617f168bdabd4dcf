"""BIP380 descriptor checksums (small, and free of embit's descriptor
package, which pulls all of miniscript into RAM)."""

from .errors import BadParams

CHARSET = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
_CHECK = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)


def _polymod(c, val):
    top = c >> 35
    c = ((c & 0x7FFFFFFFF) << 5) ^ val
    for i in range(5):
        if (top >> i) & 1:
            c ^= _GEN[i]
    return c


def checksum(body):
    """The 8-character BIP380 checksum of a descriptor without its '#...'."""
    c = 1
    group = 0
    count = 0
    for ch in body:
        pos = CHARSET.find(ch)
        if pos < 0:
            raise BadParams("descriptor has an invalid character %r" % ch)
        c = _polymod(c, pos & 31)
        group = group * 3 + (pos >> 5)
        count += 1
        if count == 3:
            c = _polymod(c, group)
            group = 0
            count = 0
    if count:
        c = _polymod(c, group)
    for _ in range(8):
        c = _polymod(c, 0)
    c ^= 1
    return "".join([_CHECK[(c >> (5 * (7 - j))) & 31] for j in range(8)])


def strip_checksum(text):
    """`text` without its '#checksum' (optional, but checked when present)."""
    i = text.find("#")
    if i < 0:
        checksum(text)  # refuses characters outside the descriptor charset
        return text
    body, given = text[:i], text[i + 1 :]
    if len(given) != 8 or checksum(body) != given:
        raise BadParams("descriptor checksum is wrong")
    return body


def add_checksum(body):
    return body + "#" + checksum(body)

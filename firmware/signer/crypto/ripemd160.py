"""RIPEMD-160 in viper, for MicroPython's hashlib, which lacks it (HASH160).

Runs unchanged on the 64-bit unix port and the 32-bit ESP32: sums and left
shifts are masked to 32 bits before anything is shifted right, and constants
>= 2**30 (not small ints on the ESP32) live in a buffer, not in the code.
"""

import micropython
from binascii import unhexlify

from .mdhash import MDHash

# Message word order (left, right) and rotations (left, right), 80 steps each.
_TAB = bytes(
    (
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
        3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
        1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
        4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
        5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
        6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
        15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
        8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
        12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
        11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
        7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
        11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
        11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
        9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6,
        8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
        9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
        9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
        15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
        8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11,
    )
)

# Step constants per round, left line then right line; then the initial state.
_CONST_HEX = (
    "000000005a8279996ed9eba18f1bbcdca953fd4e"
    "50a28be65c4dd1246d703ef37a6d76e900000000"
    "67452301efcdab8998badcfe10325476c3d2e1f0"
)


@micropython.viper
def _load(dst: ptr32, src: ptr8, off: int, n: int, big: int):
    """dst[0:n] = n 32-bit words from src[off:], big- or little-endian."""
    for i in range(n):
        j = off + 4 * i
        if big:
            dst[i] = (src[j] << 24) | (src[j + 1] << 16) | (src[j + 2] << 8) | src[j + 3]
        else:
            dst[i] = src[j] | (src[j + 1] << 8) | (src[j + 2] << 16) | (src[j + 3] << 24)


@micropython.viper
def _store_le(dst: ptr8, src: ptr32, n: int):
    for i in range(n):
        w = uint(src[i])
        j = 4 * i
        dst[j] = w
        dst[j + 1] = w >> 8
        dst[j + 2] = w >> 16
        dst[j + 3] = w >> 24


@micropython.viper
def _compress(st: ptr32, x: ptr32, tab: ptr8, kc: ptr32):
    """Fold the 16 message words x into the state st (5 words)."""
    M = (uint(0xFFFF) << 16) | 0xFFFF
    al = uint(st[0])
    bl = uint(st[1])
    cl = uint(st[2])
    dl = uint(st[3])
    el = uint(st[4])
    ar = al
    br = bl
    cr = cl
    dr = dl
    er = el
    j = 0
    while j < 80:
        rnd = j >> 4
        # The right line uses the round functions in reverse order.
        if rnd == 0:
            fl = bl ^ cl ^ dl
            fr = br ^ (cr | ~dr)
        elif rnd == 1:
            fl = dl ^ (bl & (cl ^ dl))
            fr = cr ^ (dr & (br ^ cr))
        elif rnd == 2:
            fl = (bl | ~cl) ^ dl
            fr = (br | ~cr) ^ dr
        elif rnd == 3:
            fl = cl ^ (dl & (bl ^ cl))
            fr = dr ^ (br & (cr ^ dr))
        else:
            fl = bl ^ (cl | ~dl)
            fr = br ^ cr ^ dr
        t = (al + fl + uint(x[tab[j]]) + uint(kc[rnd])) & M
        s = tab[160 + j]
        t = (((t << s) | (t >> (32 - s))) + el) & M
        al = el
        el = dl
        dl = ((cl << 10) | (cl >> 22)) & M
        cl = bl
        bl = t
        t = (ar + fr + uint(x[tab[80 + j]]) + uint(kc[5 + rnd])) & M
        s = tab[240 + j]
        t = (((t << s) | (t >> (32 - s))) + er) & M
        ar = er
        er = dr
        dr = ((cr << 10) | (cr >> 22)) & M
        cr = br
        br = t
        j += 1
    # Stores truncate to 32 bits, so no mask is needed here.
    t = uint(st[1]) + cl + dr
    st[1] = uint(st[2]) + dl + er
    st[2] = uint(st[3]) + el + ar
    st[3] = uint(st[4]) + al + br
    st[4] = uint(st[0]) + bl + cr
    st[0] = t


_K = bytearray(15 * 4)
_load(_K, unhexlify(_CONST_HEX), 0, 15, 1)
_IV = bytes(_K[40:60])
_X = bytearray(64)  # message words, shared: single-threaded firmware


def _block(state, data, off):
    _load(_X, data, off, 16, 0)
    _compress(state, _X, _TAB, _K)


class ripemd160(MDHash):
    digest_size = 20
    block_size = 64
    name = "ripemd160"
    _IV = _IV
    _LEN_BYTES = 8
    _ORDER = "little"

    def _block(self, state, data, off):
        _block(state, data, off)

    def _output(self, state):
        out = bytearray(20)
        _store_le(out, state, 5)
        return bytes(out)

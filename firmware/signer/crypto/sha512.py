"""SHA-512 (FIPS 180-4) in viper, for MicroPython's hashlib, which lacks it.

Every 64-bit word is a (hi, lo) pair of native uint32 words. The same code runs
on the 64-bit unix port (viper ints are 64 bits) and on the ESP32 (32 bits):
values kept in registers are masked to 32 bits wherever high garbage could
reach a right shift, and ptr32 stores truncate by themselves. Constants live in
buffers, never as literals >= 2**30, which would not be small ints on the ESP32.
"""

import micropython
from binascii import unhexlify

from .mdhash import MDHash

# Round constants and initial hash, big-endian.
_K_HEX = (
    "428a2f98d728ae227137449123ef65cdb5c0fbcfec4d3b2fe9b5dba58189dbbc"
    "3956c25bf348b53859f111f1b605d019923f82a4af194f9bab1c5ed5da6d8118"
    "d807aa98a303024212835b0145706fbe243185be4ee4b28c550c7dc3d5ffb4e2"
    "72be5d74f27b896f80deb1fe3b1696b19bdc06a725c71235c19bf174cf692694"
    "e49b69c19ef14ad2efbe4786384f25e30fc19dc68b8cd5b5240ca1cc77ac9c65"
    "2de92c6f592b02754a7484aa6ea6e4835cb0a9dcbd41fbd476f988da831153b5"
    "983e5152ee66dfaba831c66d2db43210b00327c898fb213fbf597fc7beef0ee4"
    "c6e00bf33da88fc2d5a79147930aa72506ca6351e003826f142929670a0e6e70"
    "27b70a8546d22ffc2e1b21385c26c9264d2c6dfc5ac42aed53380d139d95b3df"
    "650a73548baf63de766a0abb3c77b2a881c2c92e47edaee692722c851482353b"
    "a2bfe8a14cf10364a81a664bbc423001c24b8b70d0f89791c76c51a30654be30"
    "d192e819d6ef5218d69906245565a910f40e35855771202a106aa07032bbd1b8"
    "19a4c116b8d2d0c81e376c085141ab532748774cdf8eeb9934b0bcb5e19b48a8"
    "391c0cb3c5c95a634ed8aa4ae3418acb5b9cca4f7763e373682e6ff3d6b2b8a3"
    "748f82ee5defb2fc78a5636f43172f6084c87814a1f0ab728cc702081a6439ec"
    "90befffa23631e28a4506cebde82bde9bef9a3f7b2c67915c67178f2e372532b"
    "ca273eceea26619cd186b8c721c0c207eada7dd6cde0eb1ef57d4f7fee6ed178"
    "06f067aa72176fba0a637dc5a2c898a6113f9804bef90dae1b710b35131c471b"
    "28db77f523047d8432caab7b40c724933c9ebe0a15c9bebc431d67c49c100d4c"
    "4cc5d4becb3e42b6597f299cfc657e2a5fcb6fab3ad6faec6c44198c4a475817"
)
_IV_HEX = (
    "6a09e667f3bcc908bb67ae8584caa73b3c6ef372fe94f82ba54ff53a5f1d36f1"
    "510e527fade682d19b05688c2b3e6c1f1f83d9abfb41bd6b5be0cd19137e2179"
)

# Scratch words shared by all hashes: K[0..79] at words 0..159, the message
# schedule W[0..79] at words 160..319, the working variables at 320..335.
# Single-threaded firmware, so one buffer saves an allocation per block.
W_OFF = 160
KW = bytearray(336 * 4)
# W[0..15] (the message block) as its own buffer, for PBKDF2's output pointer.
W_VIEW = memoryview(KW)[W_OFF * 4 : (W_OFF + 32) * 4]


@micropython.viper
def load_be(dst: ptr32, base: int, src: ptr8, off: int, n: int):
    """dst[base:base+n] = n big-endian 32-bit words from src[off:]."""
    for i in range(n):
        j = off + 4 * i
        dst[base + i] = (src[j] << 24) | (src[j + 1] << 16) | (src[j + 2] << 8) | src[j + 3]


@micropython.viper
def store_be(dst: ptr8, src: ptr32, n: int):
    """dst[0:4n] = big-endian bytes of the n words src[0:n]."""
    for i in range(n):
        w = uint(src[i])
        j = 4 * i
        dst[j] = w >> 24
        dst[j + 1] = w >> 16
        dst[j + 2] = w >> 8
        dst[j + 3] = w


@micropython.viper
def xor_words(dst: ptr32, src: ptr32, n: int):
    for i in range(n):
        dst[i] = dst[i] ^ src[i]


@micropython.viper
def zero_words(dst: ptr32, n: int):
    for i in range(n):
        dst[i] = 0


@micropython.viper
def compress(init: ptr32, out: ptr32, kw: ptr32):
    """out = init + rounds(init, W[0..15]); W[0..15] are kw[160..191].

    init and out may be the same buffer. W[0..15] are left intact and out is
    written only at the end, so out may also point at W[0..7] (PBKDF2).
    """
    M = (uint(0xFFFF) << 16) | 0xFFFF
    # Message schedule: W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16].
    # Low halves are added as 16-bit pieces so carries never leave 32 bits.
    i = 192
    while i < 320:
        X = uint(kw[i - 30])
        x = uint(kw[i - 29])
        S0 = ((X >> 1) | (x << 31)) ^ ((X >> 8) | (x << 24)) ^ (X >> 7)
        s0 = (((x >> 1) | (X << 31)) ^ ((x >> 8) | (X << 24)) ^ ((x >> 7) | (X << 25))) & M
        X = uint(kw[i - 4])
        x = uint(kw[i - 3])
        S1 = ((X >> 19) | (x << 13)) ^ ((x >> 29) | (X << 3)) ^ (X >> 6)
        s1 = (((x >> 19) | (X << 13)) ^ ((X >> 29) | (x << 3)) ^ ((x >> 6) | (X << 26))) & M
        y = uint(kw[i - 13])
        z = uint(kw[i - 31])
        lo = (s0 & 0xFFFF) + (s1 & 0xFFFF) + (y & 0xFFFF) + (z & 0xFFFF)
        mid = (s0 >> 16) + (s1 >> 16) + (y >> 16) + (z >> 16) + (lo >> 16)
        kw[i + 1] = (mid << 16) | (lo & 0xFFFF)
        kw[i] = S0 + S1 + uint(kw[i - 14]) + uint(kw[i - 32]) + (mid >> 16)
        i += 2

    # Working variables: upper case = high word, lower case = low word.
    A = uint(init[0])
    a = uint(init[1])
    B = uint(init[2])
    b = uint(init[3])
    C = uint(init[4])
    c = uint(init[5])
    D = uint(init[6])
    d = uint(init[7])
    E = uint(init[8])
    e = uint(init[9])
    F = uint(init[10])
    f = uint(init[11])
    G = uint(init[12])
    g = uint(init[13])
    H = uint(init[14])
    h = uint(init[15])
    i = 0
    while i < 160:
        # T1 = h + S1(e) + Ch(e, f, g) + K[t] + W[t], kept as 16+16+32 bits.
        S1 = ((E >> 14) | (e << 18)) ^ ((E >> 18) | (e << 14)) ^ ((e >> 9) | (E << 23))
        s1 = ((e >> 14) | (E << 18)) ^ ((e >> 18) | (E << 14)) ^ ((E >> 9) | (e << 23))
        CH = G ^ (E & (F ^ G))
        ch = g ^ (e & (f ^ g))
        k = uint(kw[i + 1])
        w = uint(kw[i + 161])
        lo = (h & 0xFFFF) + (s1 & 0xFFFF) + (ch & 0xFFFF) + (k & 0xFFFF) + (w & 0xFFFF)
        mid = (h >> 16) + ((s1 >> 16) & 0xFFFF) + (ch >> 16) + (k >> 16) + (w >> 16) + (lo >> 16)
        T1 = H + S1 + CH + uint(kw[i]) + uint(kw[i + 160]) + (mid >> 16)
        t1l = lo & 0xFFFF
        t1m = mid & 0xFFFF
        # T2 = S0(a) + Maj(a, b, c)
        S0 = ((A >> 28) | (a << 4)) ^ ((a >> 2) | (A << 30)) ^ ((a >> 7) | (A << 25))
        s0 = ((a >> 28) | (A << 4)) ^ ((A >> 2) | (a << 30)) ^ ((A >> 7) | (a << 25))
        MJ = (A & B) | (C & (A | B))
        mj = (a & b) | (c & (a | b))
        H = G
        h = g
        G = F
        g = f
        F = E
        f = e
        lo = t1l + (d & 0xFFFF)
        mid = t1m + (d >> 16) + (lo >> 16)
        e = ((mid << 16) | (lo & 0xFFFF)) & M
        E = (D + T1 + (mid >> 16)) & M
        D = C
        d = c
        C = B
        c = b
        B = A
        b = a
        lo = t1l + (s0 & 0xFFFF) + (mj & 0xFFFF)
        mid = t1m + ((s0 >> 16) & 0xFFFF) + (mj >> 16) + (lo >> 16)
        a = ((mid << 16) | (lo & 0xFFFF)) & M
        A = (T1 + S0 + MJ + (mid >> 16)) & M
        i += 2

    v = 320
    kw[v] = A
    kw[v + 1] = a
    kw[v + 2] = B
    kw[v + 3] = b
    kw[v + 4] = C
    kw[v + 5] = c
    kw[v + 6] = D
    kw[v + 7] = d
    kw[v + 8] = E
    kw[v + 9] = e
    kw[v + 10] = F
    kw[v + 11] = f
    kw[v + 12] = G
    kw[v + 13] = g
    kw[v + 14] = H
    kw[v + 15] = h
    i = 0
    while i < 16:
        x = uint(kw[v + i + 1])
        y = uint(init[i + 1])
        lo = (x & 0xFFFF) + (y & 0xFFFF)
        mid = (x >> 16) + (y >> 16) + (lo >> 16)
        X = uint(kw[v + i]) + uint(init[i]) + (mid >> 16)
        out[i + 1] = (mid << 16) | (lo & 0xFFFF)
        out[i] = X
        i += 2


def _words(hexstr):
    raw = unhexlify(hexstr)
    buf = bytearray(len(raw))
    load_be(buf, 0, raw, 0, len(raw) // 4)
    return buf


load_be(KW, 0, unhexlify(_K_HEX), 0, 160)
IV = bytes(_words(_IV_HEX))


def block(state, data, off):
    """Compress the 128 bytes data[off:off+128] into state (16 words)."""
    load_be(KW, W_OFF, data, off, 32)
    compress(state, state, KW)


def state_bytes(state):
    out = bytearray(64)
    store_be(out, state, 16)
    return bytes(out)


class sha512(MDHash):
    digest_size = 64
    block_size = 128
    name = "sha512"
    _IV = IV
    _LEN_BYTES = 16
    _ORDER = "big"

    def _block(self, state, data, off):
        block(state, data, off)

    def _output(self, state):
        return state_bytes(state)

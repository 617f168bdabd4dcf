#!/usr/bin/env python3
"""Generate firmware/signer/crypto/ec_table.py: precomputed multiples of G.

Layout (see ec_math.mul_g): for each window i in 0..50 and j in 0..15 the
affine point (2*j + 1) * 2**(5*i) * G, then one last point 2**255 * G.
Each point is x || y, 32 bytes big-endian each: 817 * 64 = 52288 bytes.

The firmware signs with these points, so they must be right: this script uses
its own plain affine arithmetic (nothing from the firmware) and checks the
result. `--check` compares the checked-in module with a fresh rendering
(the test suite does the same).

Usage: python tools/gen_secp256k1_table.py [--check]
"""

import sys
from pathlib import Path

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
WINDOW = 5
WINDOWS = 51  # windows of 5 bits cover bits 0..254; bit 255 gets one point
PER_WINDOW = 1 << (WINDOW - 1)  # odd digits 1, 3, ..., 31

OUT = Path(__file__).resolve().parent.parent / "firmware" / "signer" / "crypto" / "ec_table.py"


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0]:
        if (a[1] + b[1]) % P == 0:
            return None
        lam = 3 * a[0] * a[0] * pow(2 * a[1], P - 2, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], P - 2, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return x, (lam * (a[0] - x) - a[1]) % P


def _mul(k, pt):
    acc = None
    while k:
        if k & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        k >>= 1
    return acc


def points():
    out = []
    base = G  # 2**(5*i) * G
    for _ in range(WINDOWS):
        two = _add(base, base)
        cur = base
        for _ in range(PER_WINDOW):
            out.append(cur)
            cur = _add(cur, two)
        for _ in range(WINDOW):
            base = _add(base, base)
    out.append(base)  # 2**255 * G
    return out


def _check(pts):
    assert len(pts) == WINDOWS * PER_WINDOW + 1
    for i in range(WINDOWS):
        for j in range(PER_WINDOW):
            if (i * 7 + j) % 97 == 0:  # spot check with an independent ladder
                assert pts[i * PER_WINDOW + j] == _mul((2 * j + 1) << (WINDOW * i), G)
    assert pts[-1] == _mul(1 << 255, G)
    for x, y in pts:
        assert (y * y - x * x * x - 7) % P == 0


def render() -> str:
    pts = points()
    _check(pts)
    lines = [
        '"""Precomputed multiples of the secp256k1 generator (generated file).',
        "",
        "Do not edit: written by tools/gen_secp256k1_table.py, checked by the tests.",
        "TABLE[64*e : 64*e + 64] is x || y (big-endian) of entry e = 16*i + j:",
        "(2*j + 1) * 2**(5*i) * G for window i in 0..50, j in 0..15, then",
        "entry 816 = 2**255 * G. One bytes constant, so that a frozen build keeps",
        "it in flash instead of RAM.",
        '"""',
        "",
        "TABLE = (",
    ]
    for x, y in pts:
        lines.append("    " + repr(x.to_bytes(32, "big") + y.to_bytes(32, "big")))
    lines.append(")")
    return "\n".join(lines) + "\n"


def main(argv):
    text = render()
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT} is stale or modified; regenerate it", file=sys.stderr)
            return 1
        print("ec_table.py is up to date")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

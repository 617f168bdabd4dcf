"""secp256k1 field and group arithmetic on MicroPython big ints.

Points are affine (x, y) tuples (None is infinity) at the edges and Jacobian
(X, Y, Z) inside loops, Z == 0 meaning infinity. Coordinates are plain ints
reduced mod P; differences may go negative between a subtraction and the next
`% P`, which Python's floor modulo brings back into range.

Scalars handed in are in [0, N-1] (the API layer rejects the others); 0
gives infinity.
"""

from .ec_table import TABLE

P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8

try:
    from os import urandom as _urandom
except ImportError:  # pragma: no cover - every port used has os.urandom
    _urandom = None


def _random_below(m):
    # Blinding factor in [1, m-1]. Only hides operands from timing; the
    # results do not depend on it, so a weak source costs no correctness.
    if _urandom is None:
        return 1
    r = int.from_bytes(_urandom(32), "big") % m
    return r if r else 1


def inv_vartime(a, m):
    """a^-1 mod m by the extended Euclid algorithm (a not 0 mod m).

    Several times faster than pow(a, m - 2, m) under MicroPython (and
    pow(a, -1, m) is broken there). Its running time depends on a: use
    inv_blind() for secret values."""
    x0 = 0
    x1 = 1
    r0 = m
    r1 = a % m
    while r1:
        q = r0 // r1
        r0, r1 = r1, r0 - q * r1
        x0, x1 = x1, x0 - q * x1
    return x0 % m


def inv_blind(a, m):
    """a^-1 mod m, with a multiplied by a random factor before the
    variable-time inversion so that its timing says nothing about a."""
    b = _random_below(m)
    return inv_vartime(a * b % m, m) * b % m


def _sqn(x, n, p):
    for _ in range(n):
        x = x * x % p
    return x


def sqrt(a):
    """A square root of a mod P, or None. Addition chain for (P + 1) / 4
    (as libsecp256k1's), about twice as fast as pow() under MicroPython."""
    p = P
    a %= p
    x2 = _sqn(a, 1, p) * a % p
    x3 = _sqn(x2, 1, p) * a % p
    x6 = _sqn(x3, 3, p) * x3 % p
    x9 = _sqn(x6, 3, p) * x3 % p
    x11 = _sqn(x9, 2, p) * x2 % p
    x22 = _sqn(x11, 11, p) * x11 % p
    x44 = _sqn(x22, 22, p) * x22 % p
    x88 = _sqn(x44, 44, p) * x44 % p
    x176 = _sqn(x88, 88, p) * x88 % p
    x220 = _sqn(x176, 44, p) * x44 % p
    x223 = _sqn(x220, 3, p) * x3 % p
    t = _sqn(x223, 23, p) * x22 % p
    t = _sqn(t, 6, p) * x2 % p
    t = _sqn(t, 2, p)
    return t if t * t % p == a else None


def on_curve(x, y):
    return 0 <= x < P and 0 <= y < P and (y * y - x * x * x - 7) % P == 0


def lift_x(x, odd):
    """The curve point with this x and y parity, or None."""
    if not 0 <= x < P:
        return None
    y = sqrt(x * x * x + 7)
    if y is None:
        return None
    if (y & 1) != odd:
        y = P - y
    return x, y


def to_affine(X, Y, Z, secret=False):
    """Jacobian to affine; None for infinity. `secret` blinds the inversion
    (Z of k*G carries information about k)."""
    if Z == 0:
        return None
    p = P
    zi = inv_blind(Z, p) if secret else inv_vartime(Z, p)
    zi2 = zi * zi % p
    return X * zi2 % p, Y * zi2 % p * zi % p


def jdouble(X, Y, Z):
    # dbl-2009-l for a = 0: 3M + 4S.
    p = P
    a = X * X % p
    b = Y * Y % p
    c = b * b % p
    d = 4 * X * b % p
    e = 3 * a
    X3 = (e * e - 2 * d) % p
    return X3, (e * (d - X3) - 8 * c) % p, 2 * Y * Z % p


def jadd_affine(X1, Y1, Z1, x2, y2):
    """(X1, Y1, Z1) + (x2, y2), every case handled (infinity, doubling,
    P + -P). madd-2007-bl: 7M + 4S."""
    if Z1 == 0:
        return x2, y2, 1
    p = P
    zz = Z1 * Z1 % p
    h = x2 * zz % p - X1
    r = y2 * Z1 % p * zz % p - Y1
    if h == 0:
        if r == 0:
            return jdouble(X1, Y1, Z1)
        return 0, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = X1 * hh % p
    X3 = (r * r - hhh - 2 * v) % p
    return X3, (r * (v - X3) - Y1 * hhh) % p, Z1 * h % p


def jadd(X1, Y1, Z1, X2, Y2, Z2):
    """Jacobian + Jacobian, every case handled. add-2007-bl: 11M + 5S."""
    if Z1 == 0:
        return X2, Y2, Z2
    if Z2 == 0:
        return X1, Y1, Z1
    p = P
    z1z1 = Z1 * Z1 % p
    z2z2 = Z2 * Z2 % p
    u1 = X1 * z2z2 % p
    s1 = Y1 * Z2 % p * z2z2 % p
    h = X2 * z1z1 % p - u1
    r = Y2 * Z1 % p * z1z1 % p - s1
    if h == 0:
        if r == 0:
            return jdouble(X1, Y1, Z1)
        return 0, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    X3 = (r * r - hhh - 2 * v) % p
    return X3, (r * (v - X3) - s1 * hhh) % p, Z1 * Z2 % p * h % p


def mul_g(k):
    """k * G in Jacobian coordinates, for 0 <= k < N.

    Fixed-window comb over TABLE without doublings. The scalar is first made
    odd (k or N - k, negating the result back), then recoded into 51 signed
    odd 5-bit digits d_i in [-31, 31] plus a top digit that is always 1, so
    k = sum(d_i * 32**i) + 2**255. Every digit is non-zero: the schedule is
    the same 52 table reads and 51 additions whatever k is. Partial sums are
    odd and below 2**255 in size, so no addition inside the loop can meet an
    exceptional case; only the last one can (when the odd scalar is
    2**256 - N, or N itself for k = 0), and it uses the complete formula."""
    p = P
    t = TABLE
    odd = k & 1
    k = (N - k, k)[odd]
    X = 0
    Y = 0
    Z = 0
    off = 0
    for i in range(51):
        u = k & 63
        neg = 1 - (u >> 5)
        k = (k - u + 32) >> 5
        o = off + ((((u >> 1) & 15) ^ (15 * neg)) << 6)
        off += 1024
        x2 = int.from_bytes(t[o : o + 32], "big")
        y2 = int.from_bytes(t[o + 32 : o + 64], "big")
        y2 = (y2, p - y2)[neg]
        if i == 0:
            X = x2
            Y = y2
            Z = 1
            continue
        # Mixed addition, inlined (see jadd_affine); never exceptional here.
        zz = Z * Z % p
        h = x2 * zz % p - X
        r = y2 * Z % p * zz % p - Y
        hh = h * h % p
        hhh = h * hh % p
        v = X * hh % p
        X = (r * r - hhh - 2 * v) % p
        Y = (r * (v - X) - Y * hhh) % p
        Z = Z * h % p
    o = 816 << 6
    X, Y, Z = jadd_affine(X, Y, Z, int.from_bytes(t[o : o + 32], "big"),
                          int.from_bytes(t[o + 32 : o + 64], "big"))
    Y = (p - Y, Y)[odd] % p
    return X, Y, Z


def _odd_multiples(x, y):
    """[(x_j, y_j, -y_j)] for (2*j + 1) * (x, y), j = 0..15, affine."""
    p = P
    # 2 * pt in affine (one inversion) so the chain can use mixed additions.
    lam = 3 * x * x % p * inv_vartime(2 * y, p) % p
    x2 = (lam * lam - 2 * x) % p
    y2 = (lam * (x - x2) - y) % p
    jac = [(x, y, 1)]
    X, Y, Z = x, y, 1
    for _ in range(15):
        X, Y, Z = jadd_affine(X, Y, Z, x2, y2)
        jac.append((X, Y, Z))
    # Batch normalisation: one inversion for all 16 points.
    acc = [1] * 16
    a = 1
    for i in range(16):
        acc[i] = a
        a = a * jac[i][2] % p
    inv = inv_vartime(a, p)
    out = [None] * 16
    for i in range(15, -1, -1):
        X, Y, Z = jac[i]
        zi = inv * acc[i] % p
        inv = inv * Z % p
        zi2 = zi * zi % p
        yy = Y * zi2 % p * zi % p
        out[i] = (X * zi2 % p, yy, p - yy)
    return out


# GLV endomorphism: lambda * (x, y) = (BETA * x, y). Splitting k into
# k1 + k2 * lambda with |k1|, |k2| < 2**128 halves the doublings.
LAMBDA = 0x5363AD4CC05C30E0A5261C028812645A122E22EA20816678DF02967C1B23BD72
BETA = 0x7AE96A2B657C07106E64479EAC3434E99CF0497512F58995C1396C28719501EE
_A1 = 0x3086D221A7D46BCDE86C90E49284EB15
_MB1 = 0xE4437ED6010E88286F547FA90ABFE4C3
_A2 = 0x114CA50F7A8E2F3F657C1108D9D44CFD8


def split_lambda(k):
    """(k1, k2) with k1 + k2 * LAMBDA == k mod N and |k1|, |k2| < 2**128:
    rounding against the short lattice basis (a1, b1), (a2, b2 = a1) bounds
    them by (|a1| + |a2|) / 2 and (|b1| + |b2|) / 2."""
    h = N >> 1
    c1 = (_A1 * k + h) // N
    c2 = (_MB1 * k + h) // N
    return k - c1 * _A1 - c2 * _A2, c1 * _MB1 - c2 * _A1


def _recode(k, digits):
    # k odd, 0 < k <= 2**128: 25 signed odd 5-bit digits (as k & 63 values,
    # see mul_g) into `digits`; returns the top digit, odd and below 9.
    for i in range(25):
        u = k & 63
        digits[i] = u
        k = (k - u + 32) >> 5
    return k


def mul_point(x, y, k):
    """k * (x, y) in Jacobian coordinates, for a valid point and 0 <= k < N."""
    k1, k2 = split_lambda(k)
    return mul_split(x, y, k1, k2)


def mul_split(x, y, k1, k2):
    """(k1 + k2 * lambda) * (x, y), for |k1|, |k2| < 2**128.

    Each half is made odd (adding a skew of 0 or 1 that is taken off at the
    end, both results computed) and positive (by negating its point), then
    recoded into 25 odd signed 5-bit digits and a small top digit. The loop
    is then the same for every k: 125 doublings and 50 additions. Additions
    check for the exceptional cases (equal or opposite points): the running
    sum a * P + b * lambda * P can meet them when (a, b) comes close to a
    vector of the GLV lattice, which specially chosen k can reach."""
    p = P
    t1 = _odd_multiples(x, y)
    t2 = [(BETA * e[0] % p, e[1], e[2]) for e in t1]
    s1 = int(k1 < 0)
    s2 = int(k2 < 0)
    k1 = (k1, -k1)[s1]
    k2 = (k2, -k2)[s2]
    skew1 = 1 - (k1 & 1)
    skew2 = 1 - (k2 & 1)
    d1 = bytearray(25)
    d2 = bytearray(25)
    top1 = _recode(k1 + skew1, d1)
    top2 = _recode(k2 + skew2, d2)
    e = t1[top1 >> 1]
    X, Y, Z = e[0], e[1 + s1], 1
    e = t2[top2 >> 1]
    X, Y, Z = jadd_affine(X, Y, Z, e[0], e[1 + s2])
    for i in range(24, -1, -1):
        for _ in range(5):
            a = X * X % p
            b = Y * Y % p
            c = b * b % p
            d = 4 * X * b % p
            f = 3 * a
            Z = 2 * Y * Z % p
            X = (f * f - 2 * d) % p
            Y = (f * (d - X) - 8 * c) % p
        for tbl, digits, sgn in ((t1, d1, s1), (t2, d2, s2)):
            u = digits[i]
            neg = 1 - (u >> 5)
            e = tbl[((u >> 1) & 15) ^ (15 * neg)]
            x2 = e[0]
            y2 = e[1 + (neg ^ sgn)]
            zz = Z * Z % p
            h = x2 * zz % p - X
            r = y2 * Z % p * zz % p - Y
            if h == 0 or Z == 0:
                X, Y, Z = jadd_affine(X, Y, Z, x2, y2)
                continue
            hh = h * h % p
            hhh = h * hh % p
            v = X * hh % p
            X = (r * r - hhh - 2 * v) % p
            Y = (r * (v - X) - Y * hhh) % p
            Z = Z * h % p
    for i in range(25):
        d1[i] = d2[i] = 0
    # Take the skews off: subtract the half's point, keep it only if skewed.
    e = t1[0]
    A = jadd_affine(X, Y, Z, e[0], e[2 - s1])
    X, Y, Z = ((X, Y, Z), A)[skew1]
    e = t2[0]
    A = jadd_affine(X, Y, Z, e[0], e[2 - s2])
    return ((X, Y, Z), A)[skew2]


"""SLIP-0039 Shamir backups with SLIP-0039's own semantics: the master
secret is the BIP32 seed, so shares made here recover the same wallet on a
Trezor and the other way round.

embit 0.8's embit.slip39 is not used whole: it takes the secret for BIP39
entropy and returns a BIP39 mnemonic (another wallet), reads the
extendable-backup flag as part of the iteration exponent, and checks every
share's checksum with the customization string of non-extendable backups.
Its GF(256) interpolation and word list are used as they are. All 45
official vectors pass (tests/firmware/test_slip39.py, CPython and
MicroPython).

Every error is a ShareError (BAD_PARAMS on the wire) naming the share it
is about, by its position in what was entered (1-based), so that the
officer knows which one to check: a word not in the list, a checksum that
fails (a mistyped word), a share of another backup, a duplicate.
"""

import hashlib
import hmac
import os

from embit.slip39 import ShareSet, rs1024_polymod
from embit.wordlists.slip39 import SLIP39_WORDS

from .errors import BadParams

RADIX_BITS = 10
ID_BITS = 15
ITERATION_EXP_BITS = 4
METADATA_WORDS = 7  # identifier, flags and exponent (2), parameters (2), checksum (3)
MIN_WORDS = 20  # 128 bits of secret
DIGEST_BYTES = 4
SECRET_INDEX = 255
DIGEST_INDEX = 254
BASE_ITERATIONS = 10000
ROUNDS = 4
MAX_SHARES = 16


class ShareError(BadParams):
    pass


def _customization(extendable):
    return b"shamir_extendable" if extendable else b"shamir"


def word_index(word):
    """The index of a SLIP39 word (the list is sorted: a binary search, no table in RAM)."""
    lo, hi = 0, len(SLIP39_WORDS)
    while lo < hi:
        mid = (lo + hi) // 2
        if SLIP39_WORDS[mid] < word:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(SLIP39_WORDS) and SLIP39_WORDS[lo] == word:
        return lo
    return -1


class Share:
    """One share, its fields as SLIP39 lays them out."""

    def __init__(self, identifier, extendable, exponent, group_index, group_threshold, group_count,
                 member_index, member_threshold, value):
        self.identifier = identifier
        self.extendable = extendable
        self.exponent = exponent
        self.group_index = group_index
        self.group_threshold = group_threshold
        self.group_count = group_count
        self.member_index = member_index
        self.member_threshold = member_threshold
        self.value = value

    def common(self):
        """What every share of one backup has in common."""
        return (self.identifier, self.extendable, self.exponent, self.group_threshold, self.group_count)

    def words(self):
        """The share as its words (a list)."""
        n = (self.identifier << 1 | (1 if self.extendable else 0)) << ITERATION_EXP_BITS | self.exponent
        params = 0
        for v in (self.group_index, self.group_threshold - 1, self.group_count - 1, self.member_index,
                  self.member_threshold - 1):
            params = params << 4 | v
        value_words = (len(self.value) * 8 + RADIX_BITS - 1) // RADIX_BITS
        data = _indices(n, 2) + _indices(params, 2) + _indices(int.from_bytes(self.value, "big"), value_words)
        return [SLIP39_WORDS[i] for i in data + _checksum(data, self.extendable)]


def _indices(n, count):
    return [(n >> (RADIX_BITS * (count - 1 - k))) & 1023 for k in range(count)]


def _int(indices):
    n = 0
    for i in indices:
        n = n << RADIX_BITS | i
    return n


def _checksum(data, extendable):
    values = list(_customization(extendable)) + data
    polymod = rs1024_polymod(values + [0, 0, 0]) ^ 1
    return [(polymod >> RADIX_BITS * (2 - k)) & 1023 for k in range(3)]


def share_checksum_ok(indices):
    """Whether the word indices of a share pass its RS1024 checksum (the
    customization string from its extendable flag)."""
    if len(indices) < 2:
        return False
    extendable = bool(indices[1] >> ITERATION_EXP_BITS & 1)
    return rs1024_polymod(list(_customization(extendable)) + list(indices)) == 1


def parse_share(text, n=1):
    """The Share of one mnemonic; ShareError naming share `n` (its position
    in what was entered) if it is not a well-formed share."""
    words = text.lower().split()
    data = []
    for k, w in enumerate(words):
        i = word_index(w)
        if i < 0:
            raise ShareError("share %d: word %d (%r) is not a SLIP39 word" % (n, k + 1, w[:12]))
        data.append(i)
    if len(data) < MIN_WORDS:
        raise ShareError("share %d: %d words; a share has at least %d" % (n, len(data), MIN_WORDS))
    padding = (RADIX_BITS * (len(data) - METADATA_WORDS)) % 16
    if padding > 8:
        raise ShareError("share %d: %d words is not the length of a share" % (n, len(data)))
    head = _int(data[:2])
    identifier = head >> (1 + ITERATION_EXP_BITS)
    extendable = bool(head >> ITERATION_EXP_BITS & 1)
    if rs1024_polymod(list(_customization(extendable)) + data) != 1:
        raise ShareError("share %d: its checksum fails: a word is mistyped or missing" % n)
    p = _int(data[2:4])
    group_index, group_threshold, group_count = p >> 16, (p >> 12 & 15) + 1, (p >> 8 & 15) + 1
    member_index, member_threshold = p >> 4 & 15, (p & 15) + 1
    if group_threshold > group_count:
        raise ShareError("share %d: its group threshold (%d) is above its group count (%d)"
                         % (n, group_threshold, group_count))
    value_data = data[4:-3]
    size = (RADIX_BITS * len(value_data) - padding) // 8
    value_int = _int(value_data)
    if value_int >> (8 * size):
        raise ShareError("share %d: its padding bits are not zero" % n)
    return Share(identifier, extendable, head & 15, group_index, group_threshold, group_count, member_index,
                 member_threshold, value_int.to_bytes(size, "big"))


def combine(mnemonics, passphrase=b""):
    """The master secret (the BIP32 seed) the shares recover, with the
    passphrase; ShareError naming what is wrong. The shares may come in any
    order."""
    if not mnemonics:
        raise ShareError("no share given")
    r = Recovery()
    for m in mnemonics:
        r.add(m)
    return r.master_secret(passphrase)


class Recovery:
    """Shares entered one at a time (the device's recovery screens): each is
    checked as it comes, so that a mistyped share, one of another backup or
    a duplicate is named at once, and complete() says when enough are in."""

    def __init__(self):
        self.first = None
        self.groups = {}  # group index -> [(share number, Share)]
        self.count = 0

    def add(self, text):
        """Check and keep the next share; ShareError naming it otherwise."""
        n = self.count + 1
        s = parse_share(text, n)
        first = self.first or s
        if s.identifier != first.identifier or s.extendable != first.extendable:
            raise ShareError("share %d is from another backup than share 1 (its first words differ)" % n)
        if s.common() != first.common():
            raise ShareError("share %d does not match share 1 (iteration exponent or group parameters differ)" % n)
        if len(s.value) != len(first.value):
            raise ShareError("share %d is not as long as share 1" % n)
        group = self.groups.get(s.group_index, [])
        for other_n, other in group:
            if other.member_index == s.member_index:
                raise ShareError("share %d is a duplicate of share %d (the same member)" % (n, other_n))
            if other.member_threshold != s.member_threshold:
                raise ShareError("share %d does not match share %d (member thresholds differ)" % (n, other_n))
        self.first = first
        group.append((n, s))
        self.groups[s.group_index] = group
        self.count = n
        return s

    def complete(self):
        """Enough shares: the group threshold of groups, each with its member threshold."""
        if self.first is None:
            return False
        full = [g for g in self.groups.values() if len(g) >= g[0][1].member_threshold]
        return len(full) >= self.first.group_threshold

    def encrypted_secret(self):
        """(encrypted master secret, identifier, extendable, exponent): what a
        device keeps, so that the passphrase is applied at every unlock."""
        first = self.first
        if first is None:
            raise ShareError("no share given")
        if len(self.groups) < first.group_threshold:
            raise ShareError("shares of %d groups; this backup needs %d" % (len(self.groups), first.group_threshold))
        if len(self.groups) > first.group_threshold:
            raise ShareError("shares of %d groups; this backup takes exactly %d" % (len(self.groups), first.group_threshold))
        points = []
        for gi in sorted(self.groups):
            group = self.groups[gi]
            need = group[0][1].member_threshold
            if len(group) != need:
                raise ShareError("group %d: %d shares; it takes exactly %d" % (gi + 1, len(group), need))
            points.append((gi, _recover([(s.member_index, s.value) for _, s in group])))
        return _recover(points), first.identifier, first.extendable, first.exponent

    def master_secret(self, passphrase=b""):
        ems, identifier, extendable, exponent = self.encrypted_secret()
        return decrypt(ems, passphrase, identifier, extendable, exponent)


def decrypt(ems, passphrase, identifier, extendable, exponent):
    """The master secret of an encrypted master secret, with the passphrase."""
    return _crypt(ems, passphrase, exponent, identifier, extendable, (3, 2, 1, 0))


def _recover(points):
    if len(points) == 1:
        return points[0][1]
    secret = ShareSet.interpolate(SECRET_INDEX, points)
    digest = ShareSet.interpolate(DIGEST_INDEX, points)
    if _digest(digest[DIGEST_BYTES:], secret) != digest[:DIGEST_BYTES]:
        raise ShareError("the shares do not recover a secret (digest mismatch): one is wrong or from another backup")
    return secret


def _digest(random_part, secret):
    return hmac.new(random_part, secret, digestmod="sha256").digest()[:DIGEST_BYTES]


def _crypt(data, passphrase, exponent, identifier, extendable, order):
    """SLIP39's Feistel cipher: rounds 0..3 encrypt, 3..0 decrypt."""
    half = len(data) // 2
    left, right = data[:half], data[half:]
    salt = b"" if extendable else b"shamir" + identifier.to_bytes(2, "big")
    iterations = (BASE_ITERATIONS << exponent) // ROUNDS
    for i in order:
        f = hashlib.pbkdf2_hmac("sha256", bytes([i]) + passphrase, salt + right, iterations, half)
        left, right = right, bytes([a ^ b for a, b in zip(left, f)])
    return right + left


def split(secret, threshold, count, passphrase=b"", exponent=1, extendable=True, random=os.urandom):
    """`count` shares (lists of words) of one group, any `threshold` of which
    recover `secret` (16 to 32 bytes, even) with the passphrase."""
    if not 16 <= len(secret) <= 32 or len(secret) % 2:
        raise ShareError("a master secret is 16 to 32 bytes, an even number")
    if not 1 <= threshold <= count <= MAX_SHARES:
        raise ShareError("shares: 1 <= threshold <= count <= %d" % MAX_SHARES)
    if not 0 <= exponent < 16:
        raise ShareError("iteration exponent out of range")
    if threshold == 1 and count > 1:
        raise ShareError("a 1-of-n backup is n copies of one share: make one share")
    identifier = int.from_bytes(random(2), "big") >> 1
    ems = _crypt(secret, passphrase, exponent, identifier, extendable, (0, 1, 2, 3))
    out = []
    for index, value in _split(threshold, count, ems, random):
        s = Share(identifier, extendable, exponent, 0, 1, 1, index, threshold, value)
        out.append(s.words())
    return out


def _split(threshold, count, secret, random):
    if threshold == 1:
        return [(0, secret)]
    points = [(i, random(len(secret))) for i in range(threshold - 2)]
    part = random(len(secret) - DIGEST_BYTES)
    base = points + [(DIGEST_INDEX, _digest(part, secret) + part), (SECRET_INDEX, secret)]
    return points + [(i, ShareSet.interpolate(i, base)) for i in range(threshold - 2, count)]

"""SLIP-0039 (signer/slip39.py): the 45 official vectors (trezor's
python-shamir-mnemonic, passphrase "TREZOR") on CPython and MicroPython,
round trips of split and combine over thresholds, counts and the shares
chosen, and the errors an officer gets for a mistyped, foreign or
duplicated share."""

import json
import os
import random

import pytest
from embit import bip32
from hypothesis import given, settings
from hypothesis import strategies as st

from amanat import mpy
from conftest import VECTORS, firmware_on_cpython

firmware_on_cpython()
from signer import slip39  # noqa: E402

CASES = json.loads((VECTORS / "slip39_vectors.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c[0].split(".")[0] for c in CASES])
def test_official_vectors(case):
    _, mnemonics, secret, xprv = case
    if not secret:
        with pytest.raises(slip39.ShareError):
            slip39.combine(mnemonics, b"TREZOR")
        return
    got = slip39.combine(mnemonics, b"TREZOR")
    assert got.hex() == secret
    assert bip32.HDKey.from_seed(got).to_base58() == xprv  # the master secret is the BIP32 seed


def test_official_vectors_under_micropython():
    code = """
import json
from signer import crypto
crypto.install()
from embit import bip32
from signer import slip39
out = []
for name, mnemonics, secret, xprv in json.loads(open(%r).read()):
    try:
        got = slip39.combine(mnemonics, b"TREZOR")
        out.append(got.hex() == secret and bip32.HDKey.from_seed(got).to_base58() == xprv)
    except slip39.ShareError:
        out.append(not secret)
print(json.dumps(out))
""" % str(VECTORS / "slip39_vectors.json")
    [results] = mpy.run_json(code)
    assert results == [True] * len(CASES)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(0, 4), st.sampled_from([16, 32]), st.booleans(), st.randoms())
def test_any_threshold_of_the_shares_recovers_the_secret(threshold, more, size, extendable, rnd):
    count = threshold + more if threshold > 1 else 1
    secret = bytes(rnd.getrandbits(8) for _ in range(size))
    shares = slip39.split(secret, threshold, count, b"pass", exponent=0, extendable=extendable,
                          random=lambda n: bytes(rnd.getrandbits(8) for _ in range(n)))
    assert len(shares) == count and {len(s) for s in shares} == {20 if size == 16 else 33}
    chosen = rnd.sample(shares, threshold)
    assert slip39.combine([" ".join(s) for s in chosen], b"pass") == secret
    if threshold > 1:
        with pytest.raises(slip39.ShareError, match="group 1: %d shares; it takes exactly %d" % (threshold - 1, threshold)):
            slip39.combine([" ".join(s) for s in chosen[:-1]], b"pass")
    assert slip39.combine([" ".join(s) for s in chosen], b"other") != secret  # the passphrase is part of it


def shares_3_of_5(seed=1):
    rnd = random.Random(seed)
    return [" ".join(s) for s in slip39.split(os.urandom(16), 3, 5, random=lambda n: bytes(rnd.getrandbits(8)
                                                                                           for _ in range(n)),
                                               exponent=0)]


def test_errors_name_the_share():
    a, b = shares_3_of_5(1), shares_3_of_5(2)
    words = a[1].split()
    words[7] = "academic" if words[7] != "academic" else "acid"
    typo = " ".join(words)
    cases = [
        ([a[0], typo, a[2]], "share 2: its checksum fails"),
        ([a[0], a[1], b[2]], "share 3 is from another backup than share 1"),
        ([a[0], a[1], a[1]], "share 3 is a duplicate of share 2"),
        ([a[0], a[1].replace(a[1].split()[5], "bitcoin", 1), a[2]], "share 2: word 6 ('bitcoin') is not a SLIP39 word"),
        ([a[0], " ".join(a[1].split()[:15])], "share 2: 15 words; a share has at least 20"),
        ([a[0], a[1], a[2], a[3]], "group 1: 4 shares; it takes exactly 3"),
        ([], "no share given"),
    ]
    for shares, words_ in cases:
        with pytest.raises(slip39.ShareError) as e:
            slip39.combine(shares)
        assert words_ in e.value.message, (words_, e.value.message)


def test_shares_are_in_any_order_and_case():
    a = shares_3_of_5(3)
    assert slip39.combine([a[4], a[0], a[2]]) == slip39.combine([a[1].upper(), a[3], a[2]])


def test_bad_parameters_are_refused():
    for args in ((bytes(15), 2, 3), (bytes(17), 2, 3), (bytes(16), 3, 2), (bytes(16), 2, 17), (bytes(16), 1, 3)):
        with pytest.raises(slip39.ShareError):
            slip39.split(*args)

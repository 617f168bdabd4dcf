"""signer.hd and KeyCache give the keys embit's own derivation gives, on
CPython and under MicroPython (where embit runs on the firmware's crypto)."""

from embit import bip32, bip39
from hypothesis import given, settings
from hypothesis import strategies as st

from amanat import mpy
from conftest import firmware_on_cpython

firmware_on_cpython()

from signer.hd import Parent  # noqa: E402
from signer.keyexpr import HARDENED  # noqa: E402
from signer.ownership import KeyCache  # noqa: E402

ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed("abandon " * 11 + "about"))
INDEX = st.integers(0, HARDENED - 1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, HARDENED - 1), min_size=1, max_size=3), INDEX, st.booleans())
def test_children_are_embits(steps, index, public):
    node = ROOT.derive([HARDENED + 84, HARDENED] + steps)
    if public:
        node = node.to_public()
    parent = Parent(node)
    want = node.child(index)
    got = parent.child(index)
    assert got.to_base58() == want.to_base58()
    assert got.sec() == want.sec() and parent.key(index).sec() == want.key.sec()
    assert got.is_private is not public
    # a grandchild through embit's own child() of the fast node is embit's too
    assert got.child(1).to_base58() == want.child(1).to_base58()


def test_hardened_index_is_refused():
    parent = Parent(ROOT)
    for bad in (HARDENED, -1):
        try:
            parent.key(bad)
        except ValueError as e:
            assert "non-hardened" in str(e)
        else:
            raise AssertionError("derived a hardened child as a non-hardened one")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(INDEX, st.integers(HARDENED, 2**32 - 1)), max_size=6), st.booleans())
def test_key_cache_gives_the_derived_key(path, private):
    cache = KeyCache(ROOT, private=private)
    for _ in range(2):  # from scratch, then from what it kept
        want = ROOT.derive(path)
        want = want if private else want.to_public()
        assert cache.get(path).to_base58() == want.to_base58()


def test_children_under_micropython():
    code = """
from signer import crypto
crypto.install()
from embit import bip32
from signer.hd import Parent
root = bip32.HDKey.from_seed(bytes(range(64)))
for node in (root.derive("m/48h/1h/0h/2h/1"), root.derive("m/84h/1h/0h/0").to_public()):
    p = Parent(node)
    for i in (0, 7, 2**31 - 1):
        print(p.child(i).to_base58() == node.child(i).to_base58(), p.key(i).sec() == node.child(i).sec())
"""
    out = mpy.run(code).split()
    assert out == ["True"] * 12

"""sha512, ripemd160, hashlib_ext and hmac of the firmware against CPython.

Differential tests run the firmware modules on CPython (through the viper
shim); a batch of cases then runs under the real MicroPython binary.
"""

import ast
import hashlib
import hmac as std_hmac
import json
import random
import subprocess
import sys
import types

import pytest
from hypothesis import given, settings, strategies as st

from conftest import ROOT, firmware_on_cpython

firmware_on_cpython()

from signer.crypto import hashlib_ext, hmac  # noqa: E402
from signer.crypto.ripemd160 import ripemd160  # noqa: E402
from signer.crypto.sha512 import sha512  # noqa: E402

CRYPTO = ROOT / "firmware" / "signer" / "crypto"
MODULES = ("sha512", "ripemd160", "hashlib_ext", "hmac")

BIP39_MNEMONIC = "abandon " * 11 + "about"
BIP39_SEED = (
    "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f"
    "09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
)

# Lengths around the 64- and 128-byte block and padding boundaries.
EDGES = (0, 1, 55, 56, 57, 63, 64, 65, 111, 112, 113, 119, 120, 127, 128, 129, 183, 184, 191, 192,
         239, 240, 255, 256, 257, 383, 384)


def ref_ripemd160(data):
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError:  # OpenSSL 3 without the legacy provider
        from embit.util.py_ripemd160 import ripemd160 as py_ripemd160

        return py_ripemd160(data)


OURS = {"sha512": sha512, "ripemd160": ripemd160}
REFS = {"sha512": lambda d: hashlib.sha512(d).digest(), "ripemd160": ref_ripemd160}


def messages():
    n = st.one_of(st.sampled_from(EDGES), st.integers(0, 400))
    return n.flatmap(lambda k: st.binary(min_size=k, max_size=k))


# --- CPython, through the shim ---------------------------------------------


@pytest.mark.parametrize("algo", sorted(OURS))
@settings(max_examples=60, deadline=None)
@given(data=messages())
def test_one_shot(algo, data):
    h = OURS[algo](data)
    assert h.digest() == REFS[algo](data)
    assert h.hexdigest() == REFS[algo](data).hex()


@pytest.mark.parametrize("algo", sorted(OURS))
@settings(max_examples=40, deadline=None)
@given(data=messages(), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_incremental_and_copy(algo, data, cuts):
    h = OURS[algo]()
    pieces, last = [], 0
    for c in sorted(min(c, len(data)) for c in cuts):
        pieces.append(data[last:c])
        last = c
    pieces.append(data[last:])
    for i, p in enumerate(pieces):
        # Feed all the buffer types embit passes in.
        h.update((bytes, bytearray, memoryview)[i % 3](p))
    snap = h.copy()
    assert h.digest() == REFS[algo](data)
    # digest() does not end the hash; the copy is independent.
    h.update(b"x")
    assert h.digest() == REFS[algo](data + b"x")
    assert snap.digest() == REFS[algo](data)


def test_attributes():
    for cls, size, block in ((sha512, 64, 128), (ripemd160, 20, 64)):
        h = cls()
        assert (h.digest_size, h.block_size, h.name) == (size, block, cls.__name__)
        assert len(h.digest()) == size


class _Wrap32(ast.NodeTransformer):
    """Truncate every arithmetic result to 32 bits, as viper does on the ESP32."""

    def _wrap(self, node):
        self.generic_visit(node)
        return ast.copy_location(ast.BinOp(node, ast.BitAnd(), ast.Constant(0xFFFFFFFF)), node)

    visit_BinOp = visit_UnaryOp = _wrap


def load_with_32_bit_viper(name):
    """The firmware module `name`, its viper functions running on 32-bit words."""
    tree = ast.parse((CRYPTO / (name + ".py")).read_text())
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and any(ast.unparse(d) == "micropython.viper" for d in fn.decorator_list):
            fn.body = [_Wrap32().visit(stmt) for stmt in fn.body]
    ast.fix_missing_locations(tree)
    mod = types.ModuleType("signer.crypto." + name + "_32")
    exec(compile(tree, str(CRYPTO / (name + ".py")), "exec"), mod.__dict__)
    return mod


@pytest.mark.parametrize("algo", sorted(OURS))
def test_viper_code_is_correct_with_32_bit_words(algo):
    # The unix port runs viper on 64-bit words; this stands in for the ESP32.
    cls = getattr(load_with_32_bit_viper(algo), algo)
    rng = random.Random(2)
    for n in EDGES:
        data = rng.randbytes(n)
        assert cls(data).digest() == REFS[algo](data)


def test_known_vectors():
    # Independent of the reference implementations used above.
    assert sha512(b"abc").hexdigest().startswith("ddaf35a193617abacc417349ae204131")
    assert ripemd160(b"").hexdigest() == "9c1185a5c5e9fc54612808977ee8f548b2258d31"
    assert ripemd160(b"abc").hexdigest() == "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"


def ref_new(name, data):
    return ref_ripemd160(data) if name == "ripemd160" else hashlib.new(name, data).digest()


def test_new_names():
    for name in ("sha256", "SHA512", "RipeMD160", "sha1", "md5"):
        assert hashlib_ext.new(name, b"abc").digest() == ref_new(name.lower(), b"abc")
        assert hashlib_ext.new(name).digest() == ref_new(name.lower(), b"")
    with pytest.raises(ValueError, match="unsupported hash type"):
        hashlib_ext.new("sha3_256")
    assert hashlib_ext.sha256 is hashlib.sha256


DIGESTMODS = ("sha256", "sha512", "sha1", "md5", "ripemd160")


def ref_hmac(key, msg, name):
    if name == "ripemd160":  # not every CPython build has it
        return _manual_hmac(key, msg, ref_ripemd160, 64)
    return std_hmac.new(key, msg, name).digest()


def _manual_hmac(key, msg, h, block):
    if len(key) > block:
        key = h(key)
    key = key.ljust(block, b"\0")
    inner = h(bytes(b ^ 0x36 for b in key) + msg)
    return h(bytes(b ^ 0x5C for b in key) + inner)


@settings(max_examples=80, deadline=None)
@given(
    key=st.one_of(st.sampled_from(EDGES), st.integers(0, 300)).flatmap(lambda k: st.binary(min_size=k, max_size=k)),
    msg=messages(),
    name=st.sampled_from(DIGESTMODS),
)
def test_hmac(key, msg, name):
    want = ref_hmac(key, msg, name)
    h = hmac.new(key, msg, digestmod=name)
    assert h.digest() == want
    assert h.hexdigest() == want.hex()
    assert hmac.digest(key, msg, name) == want
    # Incremental, with copy() in the middle.
    h = hmac.new(key, digestmod=name)
    h.update(msg[: len(msg) // 2])
    c = h.copy()
    h.update(msg[len(msg) // 2 :])
    assert h.digest() == want
    assert c.digest() == ref_hmac(key, msg[: len(msg) // 2], name)


def test_hmac_attributes_and_constructors():
    key, msg = b"k" * 200, b"message"
    for mod, size, block in ((sha512, 64, 128), (hashlib_ext.sha256, 32, 64)):
        h = hmac.new(key, msg, mod)
        ref = std_hmac.new(key, msg, h.name[5:])
        assert (h.digest_size, h.block_size, h.name) == (size, block, ref.name)
        assert h.digest() == ref.digest()
    with pytest.raises(TypeError):
        hmac.new(key, msg)
    with pytest.raises(ValueError):
        hmac.new(key, msg, "sha3_256")


def test_compare_digest():
    assert hmac.compare_digest(b"abc", b"abc")
    assert hmac.compare_digest(bytearray(b"abc"), b"abc")
    assert not hmac.compare_digest(b"abc", b"abd")
    assert not hmac.compare_digest(b"abc", b"ab")
    assert hmac.compare_digest("abc", "abc")
    with pytest.raises(TypeError):
        hmac.compare_digest("abc", b"abc")


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(("sha256", "sha512")),
    password=st.binary(max_size=200),
    salt=st.binary(max_size=150),
    iterations=st.integers(1, 4),
    dklen=st.one_of(st.none(), st.integers(1, 200)),
)
def test_pbkdf2(name, password, salt, iterations, dklen):
    want = hashlib.pbkdf2_hmac(name, password, salt, iterations, dklen)
    assert hashlib_ext.pbkdf2_hmac(name, password, salt, iterations, dklen) == want


def test_pbkdf2_errors_match_cpython():
    for args, exc, match in (
        (("sha512", b"p", b"s", 0), ValueError, "iteration value must be greater than 0"),
        (("sha512", b"p", b"s", 1, 0), ValueError, "key length must be greater than 0"),
        (("nosuchhash", b"p", b"s", 1), ValueError, None),
        (("sha512", "p", b"s", 1), TypeError, None),
    ):
        with pytest.raises(exc, match=match):
            hashlib.pbkdf2_hmac(*args)
        with pytest.raises(exc, match=match):
            hashlib_ext.pbkdf2_hmac(*args)


# --- the real MicroPython ---------------------------------------------------


@pytest.fixture
def amanat(monkeypatch):
    """The host package, also from a source checkout that is not installed."""
    host = str(ROOT / "host")
    if host not in sys.path:
        monkeypatch.syspath_prepend(host)
    import amanat.mpy
    import amanat.paths

    try:
        amanat.paths.firmware_dir()
    except ModuleNotFoundError:
        monkeypatch.setattr(amanat.paths, "firmware_dir", lambda: ROOT / "firmware")
    return amanat


@pytest.fixture
def mpy(amanat):
    return amanat.mpy


MPY_BATCH = """
import json
from binascii import hexlify, unhexlify
from signer.crypto import hashlib_ext, hmac
from signer.crypto.sha512 import sha512
from signer.crypto.ripemd160 import ripemd160

def hx(b):
    return hexlify(b).decode()

for m, k, cut in json.loads(CASES):
    m = unhexlify(m)
    k = unhexlify(k)
    out = []
    for cls in (sha512, ripemd160):
        h = cls(m[:cut])
        h.update(m[cut:])
        out.append(hx(h.digest()))
    out.append(hx(hmac.new(k, m, digestmod="sha512").digest()))
    out.append(hx(hmac.new(k, m, "sha256").digest()))
    out.append(hx(hashlib_ext.new("sha256", m).digest()))
    print(json.dumps(out))

# The built-in sha256 cannot be copied: HMAC remembers its digest.
h = hmac.new(b"key", b"msg", hashlib_ext.sha256)
d = h.digest()
try:
    h.update(b"more")
    final = False
except ValueError:
    final = True
print(json.dumps([hx(d), d == h.digest(), final]))
print(json.dumps([hx(hashlib_ext.pbkdf2_hmac("sha256", b"password", b"salt", 3, 50))]))
print(json.dumps([hx(hashlib_ext.pbkdf2_hmac("sha512", b"password", b"salt", 3, 150))]))
"""


def test_batch_under_micropython(mpy):
    rng = random.Random(1)
    cases, want = [], []
    for i in range(200):
        n = EDGES[i] if i < len(EDGES) else rng.randrange(0, 400)
        m = rng.randbytes(n)
        k = rng.randbytes(rng.choice((0, 20, 32, 64, 65, 127, 128, 129, 200)))
        cut = rng.randrange(0, n + 1)
        cases.append([m.hex(), k.hex(), cut])
        want.append(
            [
                hashlib.sha512(m).hexdigest(),
                ref_ripemd160(m).hex(),
                std_hmac.new(k, m, "sha512").hexdigest(),
                std_hmac.new(k, m, "sha256").hexdigest(),
                hashlib.sha256(m).hexdigest(),
            ]
        )
    code = "CASES = %r\n" % json.dumps(cases) + MPY_BATCH
    got = mpy.run_json(code)
    assert got[: len(want)] == want
    assert got[len(want)] == [std_hmac.new(b"key", b"msg", "sha256").hexdigest(), True, True]
    assert got[len(want) + 1] == [hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 3, 50).hex()]
    assert got[len(want) + 2] == [hashlib.pbkdf2_hmac("sha512", b"password", b"salt", 3, 150).hex()]


def test_bip39_seed_through_embit_under_micropython(mpy, tmp_path):
    # embit.misc imports secp256k1 on MicroPython; BIP39 and hash160 never use it.
    (tmp_path / "secp256k1.py").write_text("")
    code = """
import sys, json, time
from signer.crypto import hashlib_ext, hmac
sys.modules["hashlib"] = hashlib_ext
sys.modules["hmac"] = hmac
from embit import bip39, hashes
from binascii import hexlify
t = time.ticks_ms()
seed = bip39.mnemonic_to_seed(%r, "TREZOR")
ms = time.ticks_diff(time.ticks_ms(), t)
print(json.dumps([hexlify(seed).decode(), ms, hexlify(hashes.hash160(b"abc")).decode()]))
""" % BIP39_MNEMONIC
    [(seed, ms, h160)] = mpy.run_json(code, extra_path=[tmp_path])
    assert seed == BIP39_SEED
    assert ms < 2000
    assert h160 == ref_ripemd160(hashlib.sha256(b"abc").digest()).hex()


def test_bip39_seed_on_cpython():
    seed = hashlib_ext.pbkdf2_hmac("sha512", BIP39_MNEMONIC.encode(), b"mnemonicTREZOR", 2048)
    assert seed.hex() == BIP39_SEED


@pytest.mark.parametrize("name", MODULES)
def test_compiles_for_esp32(name, tmp_path, amanat):
    out = tmp_path / (name + ".mpy")
    proc = subprocess.run(
        [amanat.paths.mpy_cross_bin(), "-march=xtensawin", "-o", str(out), str(CRYPTO / (name + ".py"))],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0

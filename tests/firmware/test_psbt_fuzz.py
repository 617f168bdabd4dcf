"""Fuzzing the device's PSBT parser, review and signer with mutated PSBTs:
every input ends in a signed PSBT or a typed error (BAD_PSBT, REFUSED),
never another exception. On CPython with hypothesis, then a batch of
mutations replayed under the real MicroPython VM."""

import io
import json
import random
from binascii import hexlify

from embit import bip32, bip39, script
from embit.networks import NETWORKS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amanat import mpy, txbuild
from conftest import firmware_on_cpython
from psbt_scopes import join_scopes, split_scopes

firmware_on_cpython()
from signer import psbt_signer, review  # noqa: E402
from signer.errors import DeviceError  # noqa: E402
from signer.keystore import Keystore  # noqa: E402

MNEMONIC = "all all all all all all all all all all all all"
NETWORK = "test"
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NETWORKS[NETWORK]["xprv"])


def _base(version):
    accts = [txbuild.Account(k, ROOT.derive(txbuild.account_path(k, NETWORK)).to_public(), ROOT.my_fingerprint,
                             txbuild.account_path(k, NETWORK)) for k in txbuild.PURPOSE]
    coins = [(a, i, 30_000) for i, a in enumerate(accts)]
    payee = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
    return txbuild.build_spend(coins, payee, 60_000, 2_000, change=(accts[2], 1), version=version,
                               tag=7).psbt.serialize()


BASES = [_base(0), _base(2)]
KS = Keystore(NETWORK)
KS.load_mnemonic(MNEMONIC)


def mutate(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    pos = rng.randrange(len(raw))
    if kind == 0:  # flip bits in one byte
        return raw[:pos] + bytes([raw[pos] ^ (1 << rng.randrange(8))]) + raw[pos + 1:]
    if kind == 1:  # truncate
        return raw[:pos]
    if kind == 2:  # insert bytes
        return raw[:pos] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9))) + raw[pos:]
    scopes = split_scopes(raw)
    scope = rng.choice([s for s in scopes if s])
    n = rng.randrange(len(scope))
    if kind == 3:  # a record twice
        scope.insert(n, scope[n])
    elif kind == 4:  # a record dropped
        del scope[n]
    else:  # a record's value replaced
        key, value = scope[n]
        scope[n] = (key, bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, len(value), len(value) + 3)))))
    return join_scopes(scopes)


def outcome(raw: bytes) -> str:
    try:
        _, plan = review.review_psbt(io.BytesIO(raw), KS)
        out = io.BytesIO()
        psbt_signer.sign_psbt_stream(io.BytesIO(raw), out, KS, plan)
        return "ok"
    except DeviceError as e:
        return e.name


def test_the_unmutated_psbts_sign():
    assert [outcome(b) for b in BASES] == ["ok", "ok"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 1), st.integers(0, 2**32))
def test_mutated_psbts_get_a_typed_answer(base, seed):
    assert outcome(mutate(BASES[base], random.Random(seed))) in ("ok", "BAD_PSBT", "REFUSED")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_bad_psbts(data):
    assert outcome(b"psbt\xff" + data) in ("BAD_PSBT", "REFUSED")


def test_mutations_under_micropython():
    rng = random.Random(2026)
    cases = [mutate(BASES[i % 2], rng) for i in range(120)]
    code = """
import io, json
from binascii import unhexlify
from signer import crypto
crypto.install()
from signer.keystore import Keystore
from signer import review, psbt_signer
from signer.errors import DeviceError
ks = Keystore(%r)
ks.load_mnemonic(%r)
res = []
for h in %s:
    raw = unhexlify(h)
    try:
        _, plan = review.review_psbt(io.BytesIO(raw), ks)
        psbt_signer.sign_psbt_stream(io.BytesIO(raw), io.BytesIO(), ks, plan)
        res.append("ok")
    except DeviceError as e:
        res.append(e.name)
    except Exception as e:
        res.append("crash: %%s %%s" %% (e.__class__.__name__, e))
print(json.dumps(res))
""" % (NETWORK, MNEMONIC, json.dumps([hexlify(c).decode() for c in cases]))
    [res] = mpy.run_json(code, timeout=300)
    crashes = [r for r in res if r not in ("ok", "BAD_PSBT", "REFUSED")]
    assert not crashes, crashes[:5]
    assert res.count("ok") < len(res)  # the mutations do reach the error paths

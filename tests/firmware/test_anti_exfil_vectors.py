"""Anti-exfil ECDSA (signer/anti_exfil.py) against libsecp256k1-zkp's
ecdsa_s2c vectors, under MicroPython's portable backend and on CPython's
libsecp256k1, checked by the host's own implementation (amanat.anti_exfil)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amanat import anti_exfil as host, mpy
from conftest import VECTORS, firmware_on_cpython

firmware_on_cpython()
from embit import ec  # noqa: E402
from signer import anti_exfil  # noqa: E402

V = json.loads((VECTORS / "ecdsa_s2c_anti_exfil_vectors.json").read_text())
KEY, MSG = bytes.fromhex(V["private_key"]), bytes.fromhex(V["message"])
N = host.N


def pub(secret):
    return ec.PrivateKey(secret).get_public_key().sec()


@pytest.mark.parametrize("case", V["cases"])
def test_vectors_on_cpython(case):
    data = bytes.fromhex(case["s2c_data"])
    assert anti_exfil.signer_commit(KEY, MSG, data).hex() == case["expected_anti_exfil_signer_commit_opening"]
    sig, opening = anti_exfil.sign(KEY, MSG, data)  # s2c_data as the host's entropy
    assert opening.hex() == case["expected_s2c_opening"]
    host.check(pub(KEY), MSG, data, opening, sig.serialize())


def test_vectors_and_round_trips_under_micropython():
    rounds = [(bytes([i + 1]) * 32, bytes([0x40 + i]) * 32, bytes([0x90 + i]) * 32) for i in range(4)]
    code = """
import json
from signer import crypto
crypto.install()
from signer import anti_exfil
from binascii import hexlify, unhexlify
v = json.loads(open(%r).read())
key, msg = unhexlify(v["private_key"]), unhexlify(v["message"])
out = []
for case in v["cases"]:
    data = unhexlify(case["s2c_data"])
    sig, opening = anti_exfil.sign(key, msg, data)
    out.append([hexlify(anti_exfil.signer_commit(key, msg, data)).decode(), hexlify(opening).decode(),
                hexlify(sig.serialize()).decode()])
for key, msg, rho in %r:
    c = anti_exfil.host_commitment(rho)
    first = anti_exfil.signer_commit(key, msg, c)
    sig, opening = anti_exfil.sign(key, msg, rho, c)
    out.append([hexlify(first).decode(), hexlify(opening).decode(), hexlify(sig.serialize()).decode()])
print(json.dumps(out))
""" % (str(VECTORS / "ecdsa_s2c_anti_exfil_vectors.json"), rounds)
    [got] = mpy.run_json(code)
    for case, (commit, opening, der) in zip(V["cases"], got):
        assert commit == case["expected_anti_exfil_signer_commit_opening"]
        assert opening == case["expected_s2c_opening"]
        host.check(pub(KEY), MSG, bytes.fromhex(case["s2c_data"]), bytes.fromhex(opening), bytes.fromhex(der))
    for (key, msg, rho), (commit, opening, der) in zip(rounds, got[len(V["cases"]):]):
        assert commit == opening  # round 1's opening is the one round 2 signs with
        host.check(pub(key), msg, rho, bytes.fromhex(opening), bytes.fromhex(der))
        sig, same = anti_exfil.sign(key, msg, rho)  # libsecp256k1 on CPython: the same signature
        assert (same.hex(), sig.serialize().hex()) == (opening, der)


secrets = st.integers(1, N - 1).map(lambda k: k.to_bytes(32, "big"))
blobs = st.binary(min_size=32, max_size=32)


@settings(max_examples=40)
@given(secrets, blobs, blobs)
def test_round_trip_and_every_tamper_is_caught(secret, msg, rho):
    c = host.commitment(rho)
    assert anti_exfil.host_commitment(rho) == c
    opening = anti_exfil.signer_commit(secret, msg, c)
    sig, used = anti_exfil.sign(secret, msg, rho, c)
    assert used == opening
    der, key = sig.serialize(), pub(secret)
    host.check(key, msg, rho, opening, der)
    r, s = host._der_rs(der)
    assert s <= N // 2
    with pytest.raises(host.AntiExfilFailure):  # a flipped byte of r
        flipped = bytearray(der)
        flipped[5] ^= 0x01
        host.check(key, msg, rho, opening, bytes(flipped))
    with pytest.raises(host.AntiExfilFailure):  # another message
        host.check(key, bytes(b ^ 0xFF for b in msg), rho, opening, der)
    with pytest.raises(host.AntiExfilFailure):  # another entropy than the one committed to
        host.check(key, msg, bytes(b ^ 0x01 for b in rho), opening, der)
    other = anti_exfil.signer_commit(secret, bytes(b ^ 0x55 for b in msg), c)
    with pytest.raises(host.AntiExfilFailure):  # an opening replayed from another signature
        host.check(key, msg, rho, other, der)


@settings(max_examples=20)
@given(secrets, blobs, blobs)
def test_a_nonce_of_the_devices_own_choosing_is_caught(secret, msg, rho):
    """What cheating firmware does: sign validly with RFC 6979 (or any nonce),
    ignoring rho, and hand over an opening of its nonce."""
    c = host.commitment(rho)
    opening = anti_exfil.signer_commit(secret, msg, c)
    plain = ec.PrivateKey(secret).sign(msg).serialize()
    with pytest.raises(host.AntiExfilFailure, match="nonce does not hold"):
        host.check(pub(secret), msg, rho, opening, plain)


def test_entropy_that_does_not_open_the_commitment_is_refused():
    c = host.commitment(b"\x01" * 32)
    with pytest.raises(anti_exfil.AntiExfilError, match="does not match its commitment"):
        anti_exfil.sign(KEY, MSG, b"\x02" * 32, c)
    with pytest.raises(anti_exfil.AntiExfilError, match="32 bytes"):
        anti_exfil.signer_commit(KEY, MSG, b"\x00" * 31)

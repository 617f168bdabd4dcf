"""Device-side benchmark of the crypto embit relies on.

Runs on any MicroPython board (`import signer.bench; signer.bench.run()` at the
REPL of a real ESP32) and under the unix port (`amanat bench --device-crypto`).
Prints one JSON line per operation: {"op", "us", "n"} with the mean time.
"""

import json
import time

from . import crypto

crypto.install()

import hashlib  # noqa: E402  (the extended module, installed above)
import hmac  # noqa: E402

import secp256k1  # noqa: E402
from embit import bip32, bip39  # noqa: E402

MNEMONIC = "abandon " * 11 + "about"
SECRET = bytes(range(1, 33))
MSG = bytes(range(100, 132))


def _time(fn, n):
    fn()  # warm up (first call may build caches)
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    return time.ticks_diff(time.ticks_us(), t0) // n


def cases():
    pub = secp256k1.ec_pubkey_create(SECRET)
    sig = secp256k1.ecdsa_sign(MSG, SECRET)
    keypair = secp256k1.keypair_create(SECRET)
    xonly, _ = secp256k1.xonly_pubkey_from_pubkey(pub)
    ssig = secp256k1.schnorrsig_sign(MSG, keypair, None, bytes(32))
    sec = secp256k1.ec_pubkey_serialize(pub)
    root = bip32.HDKey.from_seed(bytes(64))
    xpub = root.to_public()
    return [
        ("ec_pubkey_create", lambda: secp256k1.ec_pubkey_create(SECRET), 20),
        ("ec_pubkey_parse", lambda: secp256k1.ec_pubkey_parse(sec), 50),
        ("ecdsa_sign", lambda: secp256k1.ecdsa_sign(MSG, SECRET), 20),
        ("ecdsa_verify", lambda: secp256k1.ecdsa_verify(sig, MSG, pub), 10),
        ("schnorrsig_sign", lambda: secp256k1.schnorrsig_sign(MSG, keypair, None, bytes(32)), 20),
        ("schnorrsig_verify", lambda: secp256k1.schnorrsig_verify(ssig, MSG, xonly), 10),
        ("bip32_child_private", lambda: root.child(7), 20),
        ("bip32_child_hardened", lambda: root.child(7, True), 20),
        ("bip32_child_public", lambda: xpub.child(7), 20),
        ("sha512_1k", lambda: hashlib.sha512(bytes(1024)).digest(), 20),
        ("hmac_sha512", lambda: hmac.new(SECRET, MSG, "sha512").digest(), 50),
        ("ripemd160_32", lambda: hashlib.new("ripemd160", MSG).digest(), 100),
        ("bip39_seed", lambda: bip39.mnemonic_to_seed(MNEMONIC, "TREZOR"), 2),
        # what an unlock costs: the seal's keys (PBKDF2-HMAC-SHA512, 4096
        # rounds, then the device key's HMAC), and a SLIP39 backup's
        # passphrase decryption at the iteration exponent shares get here (1)
        ("seal_keys_pbkdf2_4096", lambda: _seal_keys(), 2),
        ("slip39_decrypt_e1", lambda: _slip39_decrypt(), 1),
    ]


def _seal_keys():
    from .storage import _keys

    return _keys(b"123456", bytes(16), lambda k: hmac.new(SECRET, k, "sha256").digest())


def _slip39_decrypt():
    from .slip39 import decrypt

    return decrypt(bytes(32), b"passphrase", 1234, True, 1)


def run(only=None):
    for name, fn, n in cases():
        if only and name not in only:
            continue
        print(json.dumps({"op": name, "us": _time(fn, n), "n": n}))


if __name__ == "__main__":
    run()

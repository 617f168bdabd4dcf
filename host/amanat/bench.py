"""`amanat bench`: measured figures, not timed tests.

--device-crypto runs firmware/signer/bench.py under the real MicroPython unix
port and times the same operations through libsecp256k1 (coincurve, embit's
ctypes binding) and CPython's hashlib in the same run, for comparison.
"""

import hashlib
import hmac
import time

from . import mpy

# Targets for the portable backend on the unix port (microseconds).
TARGETS_US = {
    "ecdsa_sign": 5_000,
    "schnorrsig_sign": 5_000,
    "bip32_child_private": 5_000,
    "bip32_child_hardened": 5_000,
    "bip32_child_public": 5_000,
    "bip39_seed": 2_000_000,
    "seal_keys_pbkdf2_4096": 2_000_000,  # every unlock, PIN change and backup check
    "slip39_decrypt_e1": 2_000_000,  # every unlock of a device set up from SLIP39 shares
}


def device_figures(heap=None) -> dict[str, int]:
    rows = mpy.run_json("import signer.bench\nsigner.bench.run()\n", heap=heap)
    return {r["op"]: r["us"] for r in rows}


def _time(fn, n=200) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def host_figures() -> dict[str, float]:
    import coincurve
    from embit import bip32, bip39
    from embit.hashes import ripemd160

    secret = bytes(range(1, 33))
    msg = bytes(range(100, 132))
    key = coincurve.PrivateKey(secret)
    pub = key.public_key
    sec = pub.format()
    sig = key.sign(msg, hasher=None)
    xonly = coincurve.PublicKeyXOnly.from_secret(secret)
    ssig = key.sign_schnorr(msg, bytes(32))
    root = bip32.HDKey.from_seed(bytes(64))
    xpub = root.to_public()
    mnemonic = "abandon " * 11 + "about"
    return {
        "ec_pubkey_create": _time(lambda: coincurve.PublicKey.from_secret(secret)),
        "ec_pubkey_parse": _time(lambda: coincurve.PublicKey(sec)),
        "ecdsa_sign": _time(lambda: key.sign(msg, hasher=None)),
        "ecdsa_verify": _time(lambda: pub.verify(sig, msg, hasher=None)),
        "schnorrsig_sign": _time(lambda: key.sign_schnorr(msg, bytes(32))),
        "schnorrsig_verify": _time(lambda: xonly.verify(ssig, msg)),
        "bip32_child_private": _time(lambda: root.child(7)),
        "bip32_child_hardened": _time(lambda: root.child(7, True)),
        "bip32_child_public": _time(lambda: xpub.child(7)),
        "sha512_1k": _time(lambda: hashlib.sha512(bytes(1024)).digest()),
        "hmac_sha512": _time(lambda: hmac.new(secret, msg, "sha512").digest()),
        "ripemd160_32": _time(lambda: ripemd160(msg)),
        "bip39_seed": _time(lambda: bip39.mnemonic_to_seed(mnemonic, "TREZOR"), 5),
        "seal_keys_pbkdf2_4096": _time(lambda: hmac.new(secret, hashlib.pbkdf2_hmac("sha512", b"123456", bytes(16), 4096),
                                                        "sha256").digest(), 5),
        "slip39_decrypt_e1": _time(lambda: [hashlib.pbkdf2_hmac("sha256", bytes([i]) + b"passphrase", bytes(16), 5000, 16)
                                            for i in range(4)], 5),
    }


def device_crypto_report(heap=None) -> list[dict]:
    dev = device_figures(heap)
    host = host_figures()
    rows = []
    for op, us in dev.items():
        target = TARGETS_US.get(op)
        rows.append(
            {
                "op": op,
                "device_us": us,
                "libsecp256k1_us": round(host.get(op, 0), 1),
                "ratio": round(us / host[op], 1) if host.get(op) else None,
                "target_us": target,
                "meets_target": None if target is None else us <= target,
            }
        )
    return rows

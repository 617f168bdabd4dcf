"""`amanat bench --native`: the host's native secp256k1 path, in one run.

Raw libsecp256k1 rates through coincurve and through embit's bundled
library (ctypes), embit's `PSBT.sign_with` at 1000 P2WPKH inputs, and
`amanat psbt verify` (the verifier every PSBT from the device goes through)
on one 1000-input PSBT and on four of them shared out to a process per core;
then the device (the unix emulator, auto-confirm) per input at 1, 10 and 100
mixed single-sig inputs, next to the host's verification of what it returned.
"""

import os
import time

import coincurve
from embit.psbt import PSBT
from embit.util import secp256k1 as embit_secp

from . import psbt_tools
from .bench_memory import ROOT, p2wpkh_psbt

RAW_COUNT = 20_000
INPUTS = 1000
FILES = 4


def _rate(fn, count):
    t = time.perf_counter()
    for _ in range(count):
        fn()
    return count / (time.perf_counter() - t)


def raw_rates(count=RAW_COUNT) -> dict:
    """Signatures (and verifications) per second of a 32-byte hash, one core."""
    secret, digest = os.urandom(32), os.urandom(32)
    key = coincurve.PrivateKey(secret)
    sig = key.sign(digest, hasher=None)
    pub = key.public_key
    esig = embit_secp.ecdsa_sign(digest, secret)
    epub = embit_secp.ec_pubkey_create(secret)
    return {
        "coincurve_sign_per_s": round(_rate(lambda: key.sign(digest, hasher=None), count)),
        "coincurve_verify_per_s": round(_rate(lambda: pub.verify(sig, digest, hasher=None), count)),
        "embit_sign_per_s": round(_rate(lambda: embit_secp.ecdsa_sign(digest, secret), count)),
        "embit_verify_per_s": round(_rate(lambda: embit_secp.ecdsa_verify(esig, digest, epub), count)),
    }


def report(say=print, inputs=INPUTS, files=FILES, raw_count=RAW_COUNT, device_sizes=(1, 10, 100)) -> dict:
    raw = raw_rates(raw_count)
    say(f"raw: coincurve signs {raw['coincurve_sign_per_s']:,}/s, verifies {raw['coincurve_verify_per_s']:,}/s; "
        f"embit's library signs {raw['embit_sign_per_s']:,}/s, verifies {raw['embit_verify_per_s']:,}/s")
    unsigned = p2wpkh_psbt(inputs)
    psbt = PSBT.parse(unsigned)
    t = time.perf_counter()
    psbt.sign_with(ROOT)
    embit_s = time.perf_counter() - t
    signed = psbt.serialize()
    say(f"embit sign_with, {inputs} P2WPKH inputs: {embit_s:.2f} s")
    t = time.perf_counter()
    assert psbt_tools.verify(signed).partial == inputs
    one_s = time.perf_counter() - t
    cores = min(files, os.cpu_count() or 1)
    t = time.perf_counter()
    results = psbt_tools.verify_many([signed] * files, jobs=cores)
    pool_s = time.perf_counter() - t
    assert all(r.partial == inputs for r in results)
    out = {
        "raw": raw,
        "embit_sign_with": {"inputs": inputs, "seconds": round(embit_s, 3), "inputs_per_s": round(inputs / embit_s)},
        "verify_one": {"inputs": inputs, "seconds": round(one_s, 3), "inputs_per_s": round(inputs / one_s)},
        "verify_pool": {"files": files, "inputs": files * inputs, "processes": cores, "seconds": round(pool_s, 3),
                        "inputs_per_s": round(files * inputs / pool_s),
                        "inputs_per_s_per_core": round(files * inputs / pool_s / cores)},
    }
    say(f"psbt verify, {inputs} inputs: {out['verify_one']['inputs_per_s']:,} inputs/s; "
        f"{files} files on {cores} processes: {out['verify_pool']['inputs_per_s']:,} inputs/s "
        f"({out['verify_pool']['inputs_per_s_per_core']:,} per core)")
    out["device"] = []
    if device_sizes:
        from .bench_emulator import signing_report

        for r in signing_report(sizes=device_sizes, multisig=()):
            row = {"inputs": r["inputs"], "device_ms_per_input": round(r["device_ms"] / r["inputs"], 2),
                   "host_verify_ms_per_input": round(r["host_verify_ms"] / r["inputs"], 3)}
            out["device"].append(row)
            say(f"device (unix emulator), {r['inputs']} inputs: {row['device_ms_per_input']} ms per input "
                f"(review and sign); host verify {row['host_verify_ms_per_input']} ms per input")
    return out

"""`amanat bench --native`: the host's native secp256k1 path, in one run.

Raw libsecp256k1 rates through coincurve and through embit's bundled
library (ctypes), embit's `PSBT.sign_with` at 1000 P2WPKH inputs, and
`amanat psbt verify` (the verifier every PSBT from the device goes through)
on one 1000-input PSBT and on four of them shared out to a process per core;
`amanat psbt sign` (the device's review and signer on the host, whole
process: parse, review, derive, sighash, sign, serialize, write) on mixed
P2WPKH/P2TR/P2SH-P2WPKH PSBTs of 1,000 and 10,000 inputs and on 10,000
inputs in four files over a process per core; then the device (the unix emulator, auto-confirm) per input at 1, 10 and 100
mixed single-sig inputs, next to the host's verification of what it returned.
"""

import os
import tempfile
import time
from pathlib import Path

import coincurve
from embit.psbt import PSBT
from embit.util import secp256k1 as embit_secp

from . import psbt_tools, txbuild
from .bench_memory import NETWORK, PAYEE, ROOT, account, p2wpkh_psbt

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


MIXED = ("p2wpkh", "p2tr", "p2sh-p2wpkh")


def mixed_psbt(inputs: int, tag: int = 5000) -> bytes:
    """`inputs` coins of the P2WPKH, P2TR and P2SH-P2WPKH accounts in turn, to a payee and change."""
    accts = {k: account(k) for k in MIXED}
    coins = [(accts[MIXED[i % 3]], i, 50_000 + i) for i in range(inputs)]
    pay = sum(c[2] for c in coins) // 2
    return txbuild.build_spend(coins, PAYEE, pay, 150 * inputs, change=(accts["p2wpkh"], 1), tag=tag).psbt.serialize()


def soft_signing(small: int, big: int, files: int, tmp: Path) -> dict:
    """Software signing through files, as `amanat psbt sign` does it."""
    from . import soft_signer

    key = tmp / "key"
    key.write_text(ROOT.to_base58())

    def run(raws, jobs):
        paths = []
        for n, raw in enumerate(raws):
            paths.append(tmp / f"in{n}.psbt")
            paths[-1].write_bytes(raw)
        t = time.perf_counter()
        ks = soft_signer.load_key(str(key), NETWORK)
        done = soft_signer.sign_many([p.read_bytes() for p in paths], ks, jobs=jobs)
        failed = [r for r in done if not isinstance(r, soft_signer.SoftSigned)]
        if failed:
            raise failed[0]
        for p, r in zip(paths, done):
            p.with_suffix(".signed.psbt").write_bytes(r.psbt)
        return time.perf_counter() - t, sum(r.signatures for r in done)

    t_small, n_small = run([mixed_psbt(small)], 1)
    # `big` inputs in `files` files (a PSBT of 10,000 is beyond the device's 2,500-input limit,
    # which the software signer applies too): one process, then one per core
    big_raws = [mixed_psbt(big // files, tag=6000 + k) for k in range(files)]
    t_big, n_big = run(big_raws, 1)
    cores = min(files, os.cpu_count() or 1)
    t_pool, n_pool = run(big_raws, cores)
    return {"small": {"inputs": n_small, "seconds": round(t_small, 3), "inputs_per_s": round(n_small / t_small)},
            "big": {"inputs": n_big, "seconds": round(t_big, 3), "inputs_per_s": round(n_big / t_big)},
            "big_over_small": round(t_big / t_small, 2),
            "pool": {"files": files, "inputs": n_pool, "processes": cores, "seconds": round(t_pool, 3),
                     "inputs_per_s": round(n_pool / t_pool), "inputs_per_s_per_core": round(n_pool / t_pool / cores)}}


def report(say=print, inputs=INPUTS, files=FILES, raw_count=RAW_COUNT, device_sizes=(1, 10, 100),
           soft_sizes=(1000, 10_000)) -> dict:
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
    with tempfile.TemporaryDirectory(prefix="amanat-bench-") as tmp:
        soft = out["soft_sign"] = soft_signing(*soft_sizes, files, Path(tmp))
    sign_rate = max(raw["coincurve_sign_per_s"], raw["embit_sign_per_s"])
    soft["per_core_over_raw_sign"] = round(soft["pool"]["inputs_per_s_per_core"] / sign_rate, 3)
    soft["small_over_embit_sign_with"] = round(soft["small"]["inputs_per_s"] / out["embit_sign_with"]["inputs_per_s"], 1)
    say(f"psbt sign (mixed inputs, whole process): {soft['small']['inputs']:,} inputs {soft['small']['seconds']} s "
        f"({soft['small']['inputs_per_s']:,}/s, {soft['small_over_embit_sign_with']}x embit's sign_with); "
        f"{soft['big']['inputs']:,} inputs in {files} files {soft['big']['seconds']} s (x{soft['big_over_small']}); "
        f"on {soft['pool']['processes']} processes "
        f"{soft['pool']['inputs_per_s']:,}/s ({soft['pool']['inputs_per_s_per_core']:,} per core, "
        f"{soft['per_core_over_raw_sign']} of the raw signing rate)")
    out["device"] = []
    if device_sizes:
        from .bench_emulator import signing_report

        plain = signing_report(sizes=device_sizes, multisig=())
        rounds = signing_report(sizes=device_sizes, multisig=(), anti_exfil=True)
        for r, a in zip(plain, rounds):
            n = r["inputs"]
            row = {"inputs": n, "device_ms_per_input": round(r["device_ms"] / n, 2),
                   "host_verify_ms_per_input": round(r["host_verify_ms"] / n, 3),
                   "total_ms_per_input": round(r["total_ms"] / n, 2),
                   "anti_exfil_total_ms_per_input": round(a["total_ms"] / n, 2),
                   "anti_exfil_over_plain": round(a["total_ms"] / r["total_ms"], 2),
                   "anti_exfil_host_bytes_over_plain": round(a["host_bytes"] / r["host_bytes"], 2)}
            out["device"].append(row)
            say(f"device (unix emulator), {n} inputs: {row['device_ms_per_input']} ms per input "
                f"(review and sign); host verify {row['host_verify_ms_per_input']} ms per input; "
                f"whole signing {row['total_ms_per_input']} ms per input, with anti-exfil's two rounds "
                f"{row['anti_exfil_total_ms_per_input']} (x{row['anti_exfil_over_plain']}, "
                f"x{row['anti_exfil_host_bytes_over_plain']} the host's bytes)")
    return out

"""`amanat bench --memory`: does signing fit a microcontroller, and does it
stay flat as transactions grow?

On each target (the QEMU image with its 128 KiB heap when it is built, and
the unix port), one emulator started to measure its heap signs P2WPKH PSBTs
of 10, 100 and 1000 inputs (full previous transactions), a 100-input 2-of-3
wsh(sortedmulti) and a 100-input tr multi_a PSBT, and one with 2,000
outputs, then a batch of 5 PSBTs of 100 inputs. Per case: the heap's high-water mark during signing (info's
heap.peak), the device's time and its time per input, and the bytes the host
wrote to upload the PSBT against its size. Then the checks the design holds the firmware
to (peak(1000) - peak(10) <= 4 KB, a batch's peak within 4 KB of one of its PSBTs', time(1000) / time(100) <= 12, upload bytes
<= 1.05 x the PSBT), the transfer time of 100 and 1000 inputs over a line
paced at 115200 baud, and on the unix port: the smallest heap that signs
10 inputs, and whether 16 KB more signs 1000.
"""

import tempfile
import time
from pathlib import Path

from embit import bip32, bip39, script
from embit.networks import NETWORKS

from . import emulator, paths, txbuild
from .client import Client

MNEMONIC = "usage scrap plug noble deny corn permit stage tennis ceiling ranch hockey"
NETWORK = "regtest"
NET = NETWORKS[NETWORK]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
PAYEE = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
FLAT_BYTES = 4096  # peak(1000 inputs) - peak(10 inputs)
LINEAR_RATIO = 12  # time(1000 inputs) / time(100 inputs)
WIRE_RATIO = 1.05  # host-to-device bytes / PSBT bytes
BAUD = 115200
HEADROOM = 16 * 1024  # unix: smallest heap for 10 inputs + this signs 1000
BATCH = (5, 100)  # PSBTs of a batch, inputs of each
UNLOCK_S = 5.0  # PIN typed to unlocked: the seal's KDF, the device key's HMAC, the BIP39 seed


def account(kind="p2wpkh"):
    path = txbuild.account_path(kind, NETWORK)
    return txbuild.Account(kind, ROOT.derive(path).to_public(), ROOT.my_fingerprint, path)


def _wallet(kind):
    others = [bip32.HDKey.from_seed(bytes(range(i, 64 + i)), version=NET["xprv"]) for i in (0, 1)]
    return txbuild.Multisig(kind, 2, True, [txbuild.cosigner(r, "m/48h/1h/0h/2h") for r in (ROOT, *others)])


def p2wpkh_psbt(inputs: int, outputs: int = 1) -> bytes:
    """`inputs` coins of the P2WPKH account, paid to `outputs` payees plus change."""
    acct = account()
    coins = [(acct, i, 50_000 + 2_000 * outputs + i) for i in range(inputs)]
    more = [(PAYEE, 1_000)] * (outputs - 1)
    pay = sum(c[2] for c in coins) // 2  # the fee stays within the device's limit (10% of what is sent)
    return txbuild.build_spend(coins, PAYEE, pay - 1_000 * (outputs - 1), 150 * inputs + 40 * outputs, change=(acct, 1),
                               more=more, tag=3000).psbt.serialize()


def batch_psbts(count: int, inputs: int) -> list[bytes]:
    """`count` P2WPKH PSBTs of `inputs` coins each (no coin spent twice),
    each paying PAYEE and a payee of its own."""
    acct = account()
    out = []
    for k in range(count):
        coins = [(acct, 10_000 * (k + 1) + i, 50_000 + i) for i in range(inputs)]
        own = script.p2wpkh(bip32.HDKey.from_seed(bytes([k + 1]) * 32).key.get_public_key())
        pay = sum(c[2] for c in coins) // 2
        out.append(txbuild.build_spend(coins, PAYEE, pay, 150 * inputs, change=(acct, 1), more=[(own, 10_000)],
                                       tag=5000 + 1000 * k).psbt.serialize())
    return out


def batch_timed(port: str, raws: list[bytes]) -> dict:
    """Sign `raws` as one batch in one round (no anti-exfil, as sign_timed);
    the device's time (s) and its heap afterwards."""
    marks = {}
    with Client(port) as c:
        def progress(stage, done, total, k):
            if stage == "device":
                marks.setdefault("device", time.perf_counter())
            if stage == "download":
                marks.setdefault("download", time.perf_counter())

        result = c.sign_batch(raws, progress, anti_exfil=False)
        heap = c.info()["heap"]
    return {"psbts": len(raws), "signatures": sum(s.signatures for s in result.signed),
            "device_s": round(marks["download"] - marks["device"], 2), "heap": heap}


def wallet_psbt(kind: str, inputs: int) -> bytes:
    w = _wallet(kind)
    coins = [(w, i, 50_000 + i) for i in range(inputs)]
    return txbuild.build_spend(coins, PAYEE, sum(c[2] for c in coins) // 2, 300 * inputs, change=(w, 1), tag=4000).psbt.serialize()


CASES = (  # (name, inputs, outputs, the PSBT)
    ("p2wpkh", 10, 2, lambda: p2wpkh_psbt(10)),
    ("p2wpkh", 100, 2, lambda: p2wpkh_psbt(100)),
    ("p2wpkh", 1000, 2, lambda: p2wpkh_psbt(1000)),
    ("2-of-3 wsh(sortedmulti)", 100, 2, lambda: wallet_psbt("wsh", 100)),
    ("2-of-3 tr(multi_a)", 100, 2, lambda: wallet_psbt("tr", 100)),
    ("p2wpkh, 2,000 outputs", 2, 2001, lambda: p2wpkh_psbt(2, 2000)),
)


def sign_timed(port: str, raw: bytes) -> dict:
    """Sign `raw` through the device on `port` in one round (no anti-exfil:
    the figures are those of one upload, one review, one download); times of
    each stage (s), the host's bytes on the line, and the device's heap
    afterwards."""
    marks = {}
    with Client(port) as c:
        def progress(stage, done, total):
            marks.setdefault(stage, time.perf_counter())
            if stage == "upload":  # the PSBT's bytes on the line: psbt_begin and every chunk
                marks["uploaded"] = time.perf_counter()
                marks["upload_bytes"] = c.t.bytes_out

        base = c.t.bytes_out  # the connection's own info request is no part of the transfer
        t0 = time.perf_counter()
        signed = c.sign_psbt(raw, progress, anti_exfil=False)  # every new signature verified
        sent = marks["upload_bytes"] - base
        heap = c.info()["heap"]
    return {"bytes": len(raw), "signatures": signed.signatures,
            "upload_s": round(marks["uploaded"] - t0, 2),
            "device_s": round(marks["download"] - marks["uploaded"], 2),
            "download_s": round(marks["verify"] - marks["download"], 2),
            "upload_bytes": sent, "wire_ratio": round(sent / len(raw), 3), "heap": heap}


def anti_exfil_timed(port: str, raw: bytes) -> dict:
    """Sign `raw` with anti-exfil's two rounds: the whole time (s, both
    uploads, reviews, downloads), the host's bytes over the PSBT's, and the
    heap's peak over both rounds."""
    with Client(port) as c:
        base = c.t.bytes_out
        t0 = time.perf_counter()
        signed = c.sign_psbt(raw)
        took = time.perf_counter() - t0
        sent = c.t.bytes_out - base
        heap = c.info()["heap"]
    return {"bytes": len(raw), "signatures": signed.signatures, "anti_exfil": signed.anti_exfil,
            "total_s": round(took, 2), "wire_ratio": round(sent / len(raw), 3), "peak": heap["peak"]}


def _start(state, **kw):
    rec = emulator.start(state, mnemonic=MNEMONIC, network=NETWORK, auto_confirm=True, **kw)
    with Client(rec["port"]) as c:
        for kind in ("wsh", "tr"):
            c.register_wallet("bench-" + kind, _wallet(kind).descriptor())
    return rec


def target_report(target: str, tmp: Path, cases=CASES, say=print) -> dict:
    """Every case on one emulator of `target` started to measure its heap."""
    state = tmp / target
    rec = _start(state, target=target, measure_heap=True)
    rows = []
    try:
        with Client(rec["port"]) as c:
            heap = c.info()["heap"]
        for name, inputs, outputs, make in cases:
            r = sign_timed(rec["port"], make())
            r.update(case=name, inputs=inputs, outputs=outputs, peak=r.pop("heap")["peak"],
                     ms_per_input=round(1000 * r["device_s"] / inputs, 1))
            rows.append(r)
            say(f"{target}: {name}, {inputs} inputs: device {r['device_s']} s, peak heap {r['peak']:,} bytes")
        b = batch_timed(rec["port"], batch_psbts(*BATCH))
        batch = dict(psbts=BATCH[0], inputs=BATCH[0] * BATCH[1], device_s=b["device_s"], peak=b["heap"]["peak"],
                     ms_per_input=round(1000 * b["device_s"] / (BATCH[0] * BATCH[1]), 1))
        say(f"{target}: batch of {BATCH[0]} PSBTs of {BATCH[1]} inputs: device {batch['device_s']} s "
            f"(both reviews, one approval, signing), peak heap {batch['peak']:,} bytes")
        rounds = []
        for n in (10, 100):
            r = anti_exfil_timed(rec["port"], p2wpkh_psbt(n))
            rounds.append(dict(r, inputs=n))
            say(f"{target}: p2wpkh, {n} inputs with anti-exfil's two rounds: {r['total_s']} s, peak heap "
                f"{r['peak']:,} bytes, host bytes / PSBT {r['wire_ratio']}")
        emulator.stop(state)
        emulator.start(state, target=target, unlock=False)  # boots locked, as after a power cycle
        started = time.monotonic()
        outcome = emulator.unlock(state, emulator.DEFAULT_PIN)["outcome"]
        unlock_s = round(time.monotonic() - started, 2)
        say(f"{target}: PIN typed to unlocked {unlock_s} s ({outcome})")
    finally:
        emulator.stop(state)
    found = checks(rows, batch)
    found["unlock_s"] = {"value": unlock_s, "bound": UNLOCK_S, "ok": outcome == "unlocked" and unlock_s <= UNLOCK_S}
    d = rounds[1]["peak"] - rounds[0]["peak"]
    found["anti_exfil_peak_100_minus_10"] = {"value": d, "bound": FLAT_BYTES, "ok": d <= FLAT_BYTES}
    return {"target": target, "heap_size": heap["size"], "free_after_boot": heap["free_after_boot"],
            "free_after_imports": heap["free_after_imports"], "cases": rows, "batch": batch,
            "anti_exfil": rounds, "unlock_s": unlock_s, "checks": found}


def checks(rows, batch=None) -> dict:
    """The flat-memory, linear-time and wire-size figures, each with its bound."""
    by = {(r["case"], r["inputs"]): r for r in rows}
    out = {}
    one = by.get(("p2wpkh", BATCH[1]))
    if batch and one:  # a batch holds no more than one of its PSBTs does
        d = batch["peak"] - one["peak"]
        out["batch_peak_minus_single"] = {"value": d, "bound": FLAT_BYTES, "ok": d <= FLAT_BYTES}
    small, mid, big = (by.get(("p2wpkh", n)) for n in (10, 100, 1000))
    if small and big:
        d = big["peak"] - small["peak"]
        out["peak_1000_minus_10"] = {"value": d, "bound": FLAT_BYTES, "ok": d <= FLAT_BYTES}
    if mid and big:
        ratio = round(big["device_s"] / mid["device_s"], 2)
        out["time_1000_over_100"] = {"value": ratio, "bound": LINEAR_RATIO, "ok": ratio <= LINEAR_RATIO}
    worst = max(r["wire_ratio"] for r in rows)
    out["upload_bytes_over_psbt"] = {"value": worst, "bound": WIRE_RATIO, "ok": worst <= WIRE_RATIO}
    return out


def transfer_report(tmp: Path, target="unix", sizes=(100, 1000), baud=BAUD) -> list[dict]:
    """Upload and download times over a line paced like a UART at `baud`."""
    state = tmp / f"{target}-{baud}"
    rec = _start(state, target=target, baud=baud)
    try:
        rows = []
        for n in sizes:
            r = sign_timed(rec["port"], p2wpkh_psbt(n))
            r.pop("heap")
            rows.append(dict(r, inputs=n, baud=baud, target=target))
        return rows
    finally:
        emulator.stop(state)


def headroom_report(tmp: Path, low=300_000, high=1_000_000, step=4096) -> dict:
    """Unix port: the smallest heap (to `step`) that signs 10 inputs, found by
    bisection, and whether that plus 16 KB signs 1000."""
    from .bench_emulator import signs_with_heap, smallest_heap

    small = smallest_heap(raw=p2wpkh_psbt(10), low=low, high=high, step=step)
    if small is None:
        return {"smallest_10": None}
    why = {}
    ok = signs_with_heap(small + HEADROOM, p2wpkh_psbt(1000), tmp, why)
    return {"smallest_10": small, "headroom": HEADROOM, "signs_1000": ok, "failed": why.get("failed")}


def report(say=print) -> dict:
    out = {"targets": [], "transfer": [], "unix_headroom": None}
    with tempfile.TemporaryDirectory(prefix="amanat-memory-") as tmp:
        tmp = Path(tmp)
        why = paths.qemu_missing()
        if why:
            say(f"qemu: not measured ({why})")
            out["qemu_missing"] = why
        else:
            out["targets"].append(target_report("qemu", tmp, say=say))
        out["targets"].append(target_report("unix", tmp, say=say))
        say(f"transfer at {BAUD} baud (unix port)")
        out["transfer"] = transfer_report(tmp)
        say("unix: searching the smallest heap for 10 inputs")
        out["unix_headroom"] = headroom_report(tmp)
    return out

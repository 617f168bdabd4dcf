"""`amanat bench --emulator`: signing through an emulated device, measured.

Per PSBT size: upload over the pty, the device's review and signing (auto-
confirm), download, and host verification of every signature; then the
smallest MicroPython heap (`--heap`) with which the emulator still signs the
largest PSBT, found by bisection. Figures from the unix port: the ESP32 is
slower, but what fits and what streams is the same code.
"""

import tempfile
import time
from pathlib import Path

from embit import bip32, bip39, script
from embit.networks import NETWORKS

from . import emulator, txbuild
from .client import Client
from .errors import AmanatError

MNEMONIC = "usage scrap plug noble deny corn permit stage tennis ceiling ranch hockey"
NETWORK = "regtest"


def _psbt(n_inputs: int) -> bytes:
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NETWORKS[NETWORK]["xprv"])
    kinds = list(txbuild.PURPOSE)
    accts = {k: txbuild.Account(k, root.derive(txbuild.account_path(k, NETWORK)).to_public(),
                                root.my_fingerprint, txbuild.account_path(k, NETWORK)) for k in kinds}
    coins = [(accts[kinds[i % 4]], i, 20_000 + i) for i in range(n_inputs)]
    total = sum(c[2] for c in coins)
    payee = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
    return txbuild.build_spend(coins, payee, total // 2, 200 * n_inputs, change=(accts["p2wpkh"], 0),
                               tag=1000).psbt.serialize()


def _sign_once(port: str, raw: bytes, anti_exfil: bool = False) -> dict:
    """Stage times of one signing; with anti_exfil both rounds, whose stages
    interleave: then only total_ms (first upload to last download) and
    host_verify_ms separate what is whose."""
    marks = {}

    def progress(stage, done, total):
        marks.setdefault(stage, time.perf_counter())

    with Client(port) as c:
        sent = c.t.bytes_out
        t0 = time.perf_counter()
        signed = c.sign_psbt(raw, progress, anti_exfil=anti_exfil)  # verifies every new signature
        t2 = time.perf_counter()
        sent = c.t.bytes_out - sent
    upload_end = marks.get("device", t0)
    download_start = marks.get("download", t2)
    t1 = marks.get("verify", t2)  # download done
    return {"bytes": len(raw), "signatures": signed.signatures, "upload_ms": round((upload_end - t0) * 1e3, 1),
            "device_ms": round((download_start - upload_end) * 1e3, 1),
            "download_ms": round((t1 - download_start) * 1e3, 1), "total_ms": round((t1 - t0) * 1e3, 1),
            "host_verify_ms": round((t2 - t1) * 1e3, 1), "host_bytes": sent}


def _multisig_psbt(port: str, kind: str, n_inputs: int) -> bytes:
    """A PSBT spending `n_inputs` coins of a 2-of-3 wallet registered on the device."""
    net = NETWORKS[NETWORK]
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=net["xprv"])
    others = [bip32.HDKey.from_seed(bytes(range(i, 64 + i)), version=net["xprv"]) for i in (0, 1)]
    path = "m/48h/1h/0h/2h"
    wallet = txbuild.Multisig(kind, 2, True, [txbuild.cosigner(r, path) for r in (root, *others)])
    with Client(port) as c:
        c.register_wallet("bench-" + kind, wallet.descriptor())
    coins = [(wallet, i, 20_000 + i) for i in range(n_inputs)]
    total = sum(c[2] for c in coins)
    payee = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
    return txbuild.build_spend(coins, payee, total // 2, 300 * n_inputs, change=(wallet, 0),
                               tag=2000).psbt.serialize()


def signing_report(sizes=(1, 10, 50), multisig=(("wsh", 10), ("tr", 10)), anti_exfil=False) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="amanat-bench-") as tmp:
        rec = emulator.start(Path(tmp) / "dev", mnemonic=MNEMONIC, network=NETWORK, auto_confirm=True)
        try:
            for n in sizes:
                rows.append(dict(kind="single-sig mixed", inputs=n, **_sign_once(rec["port"], _psbt(n), anti_exfil)))
            for kind, n in multisig:
                raw = _multisig_psbt(rec["port"], kind, n)
                rows.append(dict(kind=f"2-of-3 {kind}", inputs=n, **_sign_once(rec["port"], raw, anti_exfil)))
        finally:
            emulator.stop(Path(tmp) / "dev")
    return rows


def signs_with_heap(heap: int, raw: bytes, tmp: Path, why: dict | None = None) -> bool:
    """Whether a fresh emulator with this heap signs `raw` (its state in a new
    folder under tmp). `why`, given, gets "boot" when the emulator did not
    even start: the unix port compiles the firmware from source at boot, and
    near the smallest heap that compile can fail on a fragmented heap."""
    state = Path(tempfile.mkdtemp(prefix=f"heap-{heap}-", dir=tmp))
    try:
        rec = emulator.start(state, mnemonic=MNEMONIC, network=NETWORK, auto_confirm=True, heap=heap)
    except AmanatError:
        if why is not None:
            why["failed"] = "boot"
        return False
    try:
        _sign_once(rec["port"], raw)
        return True
    except AmanatError:
        return False
    finally:
        emulator.stop(state)


def smallest_heap(n_inputs=20, low=200_000, high=1_000_000, step=8_192, raw=None) -> int | None:
    """Smallest heap (bytes, to `step`) with which the emulator signs `raw`
    (default: a PSBT of `n_inputs` inputs); None if even `high` is not enough."""
    raw = raw if raw is not None else _psbt(n_inputs)
    with tempfile.TemporaryDirectory(prefix="amanat-heap-") as tmp:
        if not signs_with_heap(high, raw, Path(tmp)):
            return None
        # Fragmentation makes success not quite monotonic in the heap size;
        # bisection gives a size that works, close to the smallest.
        while high - low > step:
            mid = (low + high) // 2
            if signs_with_heap(mid, raw, Path(tmp)):
                high = mid
            else:
                low = mid
    return high

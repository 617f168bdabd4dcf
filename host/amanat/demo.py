"""`make demo`: the main job end to end, through an emulated device.

Starts an emulator (the firmware on the MicroPython VM, serial over a pty),
shows what it is, builds a PSBT paying from its wallet, signs it with
`amanat sign` (auto-confirm), finalizes it, has libbitcoinkernel check every
input. Then the custody flow: a second emulated device for the second
officer, a 2-of-3 wallet registered on both from a Coldcard-style export, a
transfer signed on each device, combined, finalized and extracted
(libbitcoinkernel checks it). Stops the emulators.

The emulators approve their prompts themselves (auto-confirm): the demo says
so wherever an officer would read the screen and press a button, and shows
what the screen said (screens.jsonl).
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from embit import bip32, bip39, script
from embit.networks import NETWORKS
from embit.psbt import PSBT
from embit.transaction import Transaction
from rich.console import Console
from rich.table import Table

from . import descriptors, emulator, finalize, kernel, psbt_raw, txbuild
from .client import Client

# BIP39 words of sha256(b"amanat demo wallet")[:16]; a public test seed, never for funds.
DEMO_MNEMONIC = (
    "usage scrap plug noble deny corn permit stage tennis ceiling ranch hockey"
)
NETWORK = "regtest"
AUTO = ("[yellow]Approvals in this demo are automatic: the emulators run with --auto-confirm. On a device "
        "the officer reads each screen and answers it with the buttons.[/yellow]")


def run(console: Console | None = None) -> str:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="amanat-demo-") as tmp:
        state = Path(tmp) / "device"
        console.rule("1. Start an emulated Amanat (firmware on MicroPython, serial over a pty)")
        t0 = time.perf_counter()
        rec = emulator.start(state, mnemonic=DEMO_MNEMONIC, network=NETWORK, auto_confirm=True)
        console.print(f"emulator up in {time.perf_counter() - t0:.2f} s: {json.dumps(rec)}")
        console.print(AUTO)
        second = Path(tmp) / "officer2-device"
        try:
            txid = _job(console, rec, Path(tmp))
            _custody(console, rec, second, Path(tmp))
            return txid
        finally:
            emulator.stop(state)
            emulator.stop(second)
            console.print("emulators stopped")


def _job(console, rec, tmp: Path) -> str:
    net = NETWORKS[NETWORK]
    kinds = ["p2wpkh", "p2tr"]
    console.rule("2. What the device is, over the serial line (pyserial)")
    with Client(rec["port"]) as c:
        info = c.info()
        xpubs = {k: c.get_xpub(txbuild.account_path(k, NETWORK)) for k in kinds}
    t = Table(show_header=False)
    for k in ("model", "firmware", "protocol", "network", "initialized"):
        t.add_row(k, str(info[k]))
    t.add_row("fingerprint", info["fingerprint"].hex())
    console.print(t)
    # The same keys through libsecp256k1 on the host: the device must agree.
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(DEMO_MNEMONIC), version=net["xprv"])
    table = Table("account", "path", "xpub (device)", "host check")
    accounts = {}
    for kind in kinds:
        path = txbuild.account_path(kind, NETWORK)
        host = root.derive(path).to_public()
        host.version = net["xpub"]
        if host.to_base58() != xpubs[kind]:
            raise RuntimeError(f"device and host disagree on the {kind} xpub")
        table.add_row(f"BIP{txbuild.PURPOSE[kind]} {kind}", path, xpubs[kind], "matches")
        accounts[kind] = txbuild.Account(kind, bip32.HDKey.from_string(xpubs[kind]), info["fingerprint"], path)
    console.print(table)

    console.rule("3. Host builds a PSBT spending the device's coins")
    payee = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
    built = txbuild.build_spend(
        [(accounts["p2wpkh"], 0, 120_000), (accounts["p2tr"], 0, 80_000)],
        pay_to=payee,
        pay_amount=150_000,
        fee=1_200,
        change=(accounts["p2tr"], 0),
    )
    src = tmp / "transfer.psbt"
    src.write_bytes(built.psbt.serialize())
    console.print(f"{src.name}: {len(built.psbt.inputs)} inputs, {len(built.psbt.outputs)} outputs, "
                  f"{src.stat().st_size} bytes; pays {payee.address(net)}")

    console.rule("4. amanat sign: upload, review on the device, sign by anti-exfil's two rounds, verify every signature")
    out = tmp / "transfer.signed.psbt"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "amanat.cli", "sign", str(src), "-o", str(out),
                           "--port", rec["port"]], capture_output=True, text=True)
    console.print(proc.stdout.rstrip(), markup=False, highlight=False)
    if proc.returncode != 0:
        raise RuntimeError(f"amanat sign failed ({proc.returncode}): {proc.stderr.strip()}")
    console.print(f"({time.perf_counter() - t0:.2f} s)")
    screens = [json.loads(x) for x in (Path(rec["state"]) / "screens.jsonl").read_text().splitlines()]
    review = [s for s in screens if s["screen"] == "review_tx"][-1]
    console.print("device screen (screens.jsonl): " + " | ".join(review["lines"]) +
                  f"  -> {review['answer']} (automatic: auto-confirm)", markup=False, highlight=False)

    console.rule("5. Host finalizes; Bitcoin Core's script interpreter checks it")
    tx = finalize.finalize(psbt_raw.parse_psbt(out.read_bytes()))
    kernel.verify_transaction(tx, built.spent)
    txid = Transaction.parse(tx).txid().hex()
    console.print(f"libbitcoinkernel: every input valid  txid [bold]{txid}[/bold]")
    return txid


# The second officer's device and the backup key (public test seeds, never for funds).
OFFICER_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
BACKUP_SEED = bytes(range(1, 65))
CUSTODY_PATH = "m/48h/1h/0h/2h"


def _cli(*args) -> str:
    proc = subprocess.run([sys.executable, "-m", "amanat.cli", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"amanat {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _custody(console, rec, second_state: Path, tmp: Path) -> str:
    net = NETWORKS[NETWORK]
    console.rule("6. Custody: a second officer's device; a 2-of-3 wallet registered on both")
    rec2 = emulator.start(second_state, mnemonic=OFFICER_MNEMONIC, network=NETWORK, auto_confirm=True)
    console.print(f"officer 2's emulated device: fingerprint {rec2['fingerprint']}, port {rec2['port']}")
    backup = bip32.HDKey.from_seed(BACKUP_SEED, version=net["xprv"])
    # Each device gives its own cosigner key; the backup key is an offline one kept in a vault.
    cosigners = []
    for r in (rec, rec2):
        with Client(r["port"]) as c:
            fp = bytes(c.info()["fingerprint"])
            cosigners.append(txbuild.Cosigner(fp, descriptors.parse_path(CUSTODY_PATH),
                                              bip32.HDKey.from_string(c.get_xpub(CUSTODY_PATH))))
    cosigners.append(txbuild.cosigner(backup, CUSTODY_PATH))
    export = ["Name: Reserve", "Policy: 2 of 3", "Derivation: m/48'/1'/0'/2'", "Format: P2WSH", ""]
    export += [f"{c.fingerprint.hex().upper()}: {c.xpub.to_base58()}" for c in cosigners]
    (tmp / "reserve.txt").write_text("\n".join(export) + "\n")
    for n, r in enumerate((rec, rec2), 1):
        out = json.loads(_cli("wallet", "register", str(tmp / "reserve.txt"), "--port", r["port"], "--json"))
        console.print(f"device {n}: registered Reserve (approved automatically: the policy page and one page per "
                      f"cosigner with its whole key); registration {out['registration'][:16]}...", markup=False)
    console.print("The registration is the device's own proof (an HMAC under its seed) that it registered this "
                  "exact wallet: HWI tools hand it back (--registration) and the device checks it before it shows "
                  "an address or signs; it is not a secret and proves nothing to anyone else.", markup=False)
    console.print(_cli("wallet", "show", "Reserve", "--port", rec["port"]).rstrip(), markup=False, highlight=False)

    console.rule("7. Officer 1 signs on device 1, officer 2 on device 2, the coordinator assembles")
    wallet = txbuild.Multisig("wsh", 2, True, cosigners)
    payee = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
    built = txbuild.build_spend([(wallet, i, 400_000) for i in range(3)], payee, 1_000_000, 3_000,
                                change=(wallet, 0), tag=500)
    (tmp / "reserve.psbt").write_bytes(built.psbt.serialize())
    for n, r in enumerate((rec, rec2), 1):
        console.print(f"officer {n} (automatic approval):", markup=False)
        console.print(_cli("sign", str(tmp / "reserve.psbt"), "-o", str(tmp / f"officer{n}.psbt"),
                           "--port", r["port"]).rstrip(), markup=False, highlight=False)
    _cli("psbt", "combine", str(tmp / "officer1.psbt"), str(tmp / "officer2.psbt"), "-o", str(tmp / "both.psbt"))
    _cli("psbt", "finalize", str(tmp / "both.psbt"), "-o", str(tmp / "final.psbt"))
    out = json.loads(_cli("psbt", "extract", str(tmp / "final.psbt"), "--json"))
    if not out.get("verified"):
        raise RuntimeError("the custody transaction was not checked by libbitcoinkernel")
    console.print(f"libbitcoinkernel: every input valid  txid [bold]{out['txid']}[/bold]")
    console.print("What happened: two emulated devices each reviewed and signed (automatically approved); the "
                  "host verified every signature, combined, finalized, and Bitcoin Core's script interpreter "
                  "accepted the transaction. Nothing was broadcast (regtest, no node).", markup=False)
    return out["txid"]

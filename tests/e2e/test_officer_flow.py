"""The custody flow with the command line: two officers, each with their own
emulated device, register the same 2-of-3 wallet from a Coldcard/Sparrow
export, each signs the transfer, a coordinator combines, finalizes and
extracts (libbitcoinkernel checks the transaction)."""

import json
import os
import subprocess
import sys

from embit import bip32, bip39, script
from embit.networks import NETWORKS

from amanat import txbuild
from e2e_support import MNEMONIC, Emu

NET = NETWORKS["regtest"]
SEEDS = [MNEMONIC, "legal winner thank year wave sausage worth useful legal winner thank yellow"]
ROOTS = [bip32.HDKey.from_seed(bip39.mnemonic_to_seed(m), version=NET["xprv"]) for m in SEEDS]
BACKUP = bip32.HDKey.from_seed(bytes(range(64)), version=NET["xprv"])
PATH = "m/48h/1h/0h/2h"
AMANAT = os.path.join(os.path.dirname(sys.executable), "amanat")


def amanat(*args):
    out = subprocess.run([AMANAT, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_two_officers_sign_a_transfer(tmp_path):
    wallet = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, PATH) for r in (*ROOTS, BACKUP)])
    export = ["# exported by a coordinator", "Name: Reserve", "Policy: 2 of 3", "Derivation: m/48'/1'/0'/2'",
              "Format: P2WSH", ""]
    for r in (*ROOTS, BACKUP):
        export.append(f"{r.my_fingerprint.hex().upper()}: {r.derive(PATH).to_public().to_base58()}")
    (tmp_path / "reserve.txt").write_text("\n".join(export) + "\n")

    built = txbuild.build_spend([(wallet, i, 70_000) for i in range(3)],
                                script.p2wpkh(BACKUP.derive("m/84h/1h/0h/0/0").key), 150_000, 2_000,
                                change=(wallet, 5), tag=900)
    (tmp_path / "transfer.psbt").write_bytes(built.psbt.serialize())

    devices = [Emu(tmp_path / f"officer{n}", mnemonic=m, auto_confirm=True).start() for n, m in enumerate(SEEDS)]
    try:
        for n, dev in enumerate(devices):
            amanat("wallet", "register", str(tmp_path / "reserve.txt"), "--port", dev.port)
            shown = json.loads(amanat("wallet", "show", "Reserve", "--port", dev.port, "--json"))
            assert sum(k["ours"] for k in shown["keys"]) == 1
            addr = amanat("wallet", "address", "Reserve", "0", "--port", dev.port).strip()
            assert addr == wallet.scripts(0, 0).script_pubkey.address(NET)
            out = amanat("sign", str(tmp_path / "transfer.psbt"), "-o", str(tmp_path / f"officer{n}.psbt"),
                         "--port", dev.port)
            assert "1 of 2 signatures present on every input" in out  # each officer signs the unsigned PSBT
            review = [s for s in dev.screens() if s["screen"] == "review_tx"][-1]
            assert review["wallet"] == "Reserve" and len(review["change"]) == 1
    finally:
        for dev in devices:
            dev.stop()
    amanat("psbt", "combine", str(tmp_path / "officer0.psbt"), str(tmp_path / "officer1.psbt"),
           "-o", str(tmp_path / "both.psbt"))
    amanat("psbt", "finalize", str(tmp_path / "both.psbt"), "-o", str(tmp_path / "final.psbt"))
    out = json.loads(amanat("psbt", "extract", str(tmp_path / "final.psbt"), "--json"))
    assert len(out["txid"]) == 64 and out["verified"] is True

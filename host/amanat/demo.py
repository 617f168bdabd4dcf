"""`amanat demo`: the main job, end to end, with what happened printed.

Today: the firmware, on the real MicroPython VM with its own device crypto,
loads a demo mnemonic, shows its account xpubs (checked against libsecp256k1 on
the host), signs a PSBT spending P2WPKH and P2TR coins, and Bitcoin Core's
script interpreter (libbitcoinkernel) accepts the finalized transaction.
"""

import time

from embit import bip32, bip39, script
from embit.psbt import PSBT
from embit.transaction import Transaction
from rich.console import Console
from rich.table import Table

from . import finalize, inprocess, kernel, txbuild

# BIP39 words of sha256(b"amanat demo wallet")[:16]; a public test seed, never for funds.
DEMO_MNEMONIC = (
    "usage scrap plug noble deny corn permit stage tennis ceiling ranch hockey"
)
NETWORK = "regtest"


def run(console: Console | None = None) -> str:
    console = console or Console()
    kinds = ["p2wpkh", "p2tr"]
    paths = [txbuild.account_path(k, NETWORK) for k in kinds]

    console.rule("1. Device loads the mnemonic (MicroPython, device crypto)")
    t0 = time.perf_counter()
    dev = inprocess.xpubs(DEMO_MNEMONIC, paths, network=NETWORK)
    console.print(f"master fingerprint {dev['fingerprint']}  ({time.perf_counter() - t0:.2f} s)")

    # The same keys through libsecp256k1 on the host: the device must agree.
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(DEMO_MNEMONIC), version=bip32.NETWORKS[NETWORK]["xprv"])
    table = Table("account", "path", "xpub (device)", "host check")
    accounts = {}
    for kind, path in zip(kinds, paths):
        xpub = dev["xpubs"][path]
        host = root.derive(path).to_public()
        host.version = bip32.NETWORKS[NETWORK]["xpub"]
        same = host.to_base58() == xpub
        if not same:
            raise RuntimeError(f"device and host disagree on the {kind} xpub")
        table.add_row(f"BIP{txbuild.PURPOSE[kind]} {kind}", path, xpub, "matches")
        accounts[kind] = txbuild.Account(kind, bip32.HDKey.from_string(xpub), bytes.fromhex(dev["fingerprint"]), path)
    console.print(table)

    console.rule("2. Host builds a PSBT spending the device's coins")
    payee = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
    built = txbuild.build_spend(
        [(accounts["p2wpkh"], 0, 120_000), (accounts["p2tr"], 0, 80_000)],
        pay_to=payee,
        pay_amount=150_000,
        fee=1_200,
        change=(accounts["p2tr"], 0),
    )
    raw = built.psbt.serialize()
    console.print(f"PSBT: {len(built.psbt.inputs)} inputs, {len(built.psbt.outputs)} outputs, {len(raw)} bytes")
    console.print(f"pay {payee.address(bip32.NETWORKS[NETWORK])}: 150000 sat, fee 1200 sat, change 48800 sat")

    console.rule("3. Device signs")
    t0 = time.perf_counter()
    signed, count = inprocess.sign(raw, DEMO_MNEMONIC, network=NETWORK)
    console.print(f"{count} signatures added ({time.perf_counter() - t0:.2f} s)")

    console.rule("4. Host finalizes; Bitcoin Core's script interpreter checks it")
    tx = finalize.finalize(PSBT.parse(signed))
    kernel.verify_transaction(tx, built.spent)
    txid = Transaction.parse(tx).txid().hex()
    console.print(f"libbitcoinkernel: every input valid  txid [bold]{txid}[/bold]")
    return txid

"""A tap on the serial line through setup, unlock, key requests, a backup
check and a signing: nothing secret crosses it. Not the words (nor three
of them in a row), the entropy, the BIP32 seed, the master key or chain
code, an account's private key, nor the PIN."""

import threading

from embit import bip32, bip39

from amanat import emulator, txbuild
from amanat.client import Client
from amanat.debuglink import DebugLink
from e2e_support import MNEMONIC, LossyLine, restore_by_hand

PIN = "2468"


def test_nothing_secret_crosses_the_serial_line(tmp_path):
    rec = emulator.start(tmp_path, auto_confirm=True)  # fresh: it waits at its setup screen
    tap = LossyLine(rec["port"], 0.0)
    try:
        with Client(tap.port) as c, DebugLink(rec["debug_port"]) as dl:
            restore_by_hand(dl, MNEMONIC, PIN, between=c.info)  # the host polls through the tap meanwhile
            while c.info()["locked"]:
                pass
            xpub = c.get_xpub("m/84h/1h/0h")
            out = {}
            t = threading.Thread(target=lambda: out.update(matches=c.backup_check()), daemon=True)
            t.start()
            dl.wait_screen("confirm_pin")
            dl.type_text(PIN)
            dl.wait_screen("check_words")
            dl.type_text(MNEMONIC)
            t.join(30)
            assert out == {"matches": True}
            path = txbuild.account_path("p2wpkh", "regtest")
            acct = txbuild.Account("p2wpkh", bip32.HDKey.from_base58(xpub), ROOT.my_fingerprint, path)
            signed = c.sign_psbt(txbuild.build_spend([(acct, 0, 50_000)], acct.output(0, 1), 20_000, 500,
                                                     change=(acct, 1)).psbt.serialize())
            assert signed.signatures == 1
    finally:
        tap.close()
        emulator.stop(tmp_path)
    line = bytes(tap.captured)
    assert len(line) > 2000 and xpub.encode() in line  # the whole session went through the tap, readable
    words = MNEMONIC.split()
    secrets = {"entropy": bip39.mnemonic_to_bytes(MNEMONIC), "seed": SEED, "master key": ROOT.key.secret,
               "chain code": ROOT.chain_code, "account key": ROOT.derive("m/84h/1h/0h").key.secret,
               "address key": ROOT.derive("m/84h/1h/0h/0/0").key.secret, "PIN": PIN.encode()}
    for i in range(len(words) - 2):
        secrets["words %d-%d" % (i, i + 2)] = " ".join(words[i : i + 3]).encode()
    for name, value in secrets.items():
        assert value not in line, name


SEED = bip39.mnemonic_to_seed(MNEMONIC)
ROOT = bip32.HDKey.from_seed(SEED)

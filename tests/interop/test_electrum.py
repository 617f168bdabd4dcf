"""Interop with a real Electrum client (Debian's python3-electrum, run by the
system python3): the wallet file `amanat wallet export --format electrum`
writes opens in Electrum with the device's key origins; the PSBT Electrum
makes is signed by the emulator (the device recognises its key and the
wallet's change) and by a second officer; Electrum combines and finalizes;
libbitcoinkernel accepts the transaction.

Skipped when the system python3 has no electrum module (make test installs
python3-electrum when it can), unless AMANAT_REQUIRE_ELECTRUM=1."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from embit import bip32, bip39, script
from embit.networks import NETWORKS
from embit.psbt import PSBT

from amanat import kernel, policy, txbuild
from e2e_support import MNEMONIC

NET = NETWORKS["regtest"]
PATH = "m/48h/1h/0h/2h"
DEVICE = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
OFFICER = bip32.HDKey.from_seed(bip39.mnemonic_to_seed("legal winner thank year wave sausage worth useful legal "
                                                       "winner thank yellow"), version=NET["xprv"])
BACKUP = bip32.HDKey.from_seed(bip39.mnemonic_to_seed("zoo " * 11 + "wrong"), version=NET["xprv"])
PAY_TO = "bcrt1qm90ugl4d48jv8n6e5t9ln6t9zlpm5th68x4f8g"
SYSTEM_PYTHON = "/usr/bin/python3"
HERE = Path(__file__).parent
AMANAT = os.path.join(os.path.dirname(sys.executable), "amanat")


def _electrum_missing():
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", "import electrum"], capture_output=True, timeout=60)
    except OSError as e:
        return str(e)
    return None if out.returncode == 0 else "the system python3 has no electrum module (apt install python3-electrum)"


@pytest.fixture(scope="module")
def electrum_ready():
    why = _electrum_missing()
    if why and os.environ.get("AMANAT_REQUIRE_ELECTRUM") == "1":
        pytest.fail(why)
    if why:
        pytest.skip(why)


def electrum(**req):
    out = subprocess.run([SYSTEM_PYTHON, str(HERE / "electrum_client.py")], input=json.dumps(req),
                         capture_output=True, text=True, timeout=120, env={"PATH": os.environ.get("PATH", "")})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_electrum_wallet_signed_by_the_device(electrum_ready, auto_emu, tmp_path):
    wallet = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, PATH) for r in (DEVICE, OFFICER, BACKUP)])
    desc = policy.canonical(wallet.descriptor())
    with auto_emu.client() as c:
        c.register_wallet("Electrum", desc)
    out = subprocess.run([AMANAT, "wallet", "export", "Electrum", "--format", "electrum", "-o",
                          str(tmp_path / "vault.json"), "--port", auto_emu.port], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr

    funding = txbuild.funding_tx([(wallet.scripts(0, 0).script_pubkey, 90_000),
                                  (wallet.scripts(0, 1).script_pubkey, 60_000)], tag=31)
    home = str(tmp_path / "electrum-home")
    made = electrum(op="make_psbt", wallet=str(tmp_path / "vault.json"), home=home,
                    funding=[funding.serialize().hex()], pay_to=PAY_TO, amount=120_000, fee=1_500)
    assert made["addresses"] == [wallet.scripts(0, 0).script_pubkey.address(NET)]  # the same wallet
    unsigned = base64.b64decode(made["psbt"])
    psbt = PSBT.parse(unsigned)
    assert all(DEVICE.my_fingerprint in {d.fingerprint for d in i.bip32_derivations.values()} for i in psbt.inputs)

    (tmp_path / "electrum.psbt").write_bytes(unsigned)
    out = subprocess.run([AMANAT, "sign", str(tmp_path / "electrum.psbt"), "-o", str(tmp_path / "device.psbt"),
                          "--json", "--port", auto_emu.port], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    review = json.loads(out.stdout)["review"]
    assert review["wallet"] == "Electrum" and len(review["change"]) == 1  # Electrum's change is the vault's
    assert [s["address"] for s in review["spends"]] == [PAY_TO]

    officer = PSBT.parse(unsigned)
    assert officer.sign_with(OFFICER) == len(officer.inputs)
    final = electrum(op="finalize", wallet=str(tmp_path / "vault.json"), home=home,
                     psbts=[base64.b64encode((tmp_path / "device.psbt").read_bytes()).decode(), officer.to_base64()])
    assert final["complete"]
    spent = [(o.script_pubkey.data, o.value) for o in funding.vout]
    tx = bytes.fromhex(final["tx"])
    from embit.transaction import Transaction

    order = [i.vout for i in Transaction.parse(tx).vin]  # Electrum chose the input order
    kernel.verify_transaction(tx, [spent[n] for n in order])
    assert script.address_to_scriptpubkey(PAY_TO).data in tx

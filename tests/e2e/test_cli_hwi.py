"""The command lines against a running emulator: `amanat` for people, and
`amanat-hwi` in the exact call shapes Bitcoin Core uses as an external signer."""

import base64
import json
import os
import subprocess
import sys

import pytest
from embit import bip32, bip39, script
from embit.descriptor.checksum import add_checksum
from embit.networks import NETWORKS
from embit.psbt import PSBT

from amanat import finalize, kernel, txbuild
from e2e_support import MNEMONIC

NET = NETWORKS["regtest"]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
FP = ROOT.my_fingerprint.hex()
BIN = os.path.dirname(sys.executable)


def run(tool, *args, stdin=None, env=None):
    out = subprocess.run([os.path.join(BIN, tool), *args], input=stdin, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, **(env or {})))
    return out


def hwi(*args, stdin=None, env=None):
    out = run("amanat-hwi", *args, stdin=stdin, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout
    return json.loads(lines[0])


def test_amanat_info_finds_the_emulator(auto_emu):
    out = run("amanat", "info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["fingerprint"] == FP and info["port"] == auto_emu.port
    out = run("amanat", "xpub", "m/84h/1h/0h", "--port", auto_emu.port)
    want = ROOT.derive("m/84h/1h/0h").to_public()
    want.version = NET["xpub"]
    assert out.stdout.strip() == want.to_base58()
    out = run("amanat", "address", "5", "--type", "p2tr", "--port", auto_emu.port)
    assert out.stdout.strip() == script.p2tr(ROOT.derive("m/86h/1h/0h/0/5").key).address(NET)


def test_amanat_errors_are_one_line(auto_emu):
    out = run("amanat", "xpub", "m/0/1/2/3/4/5/6/7/8", "--port", auto_emu.port)  # deeper than the device goes
    assert out.returncode == 5 and "BAD_PARAMS" in out.stderr and "Traceback" not in out.stderr
    out = run("amanat", "xpub", "m/84x", "--port", auto_emu.port)  # refused here: a usage error
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "84x" in out.stderr
    out = run("amanat", "info", "--port", "/dev/nonexistent-amanat")
    assert out.returncode == 3 and len(out.stderr.strip().splitlines()) == 1


def test_enumerate_lists_emulators_only_when_asked(auto_emu):
    assert all(d.get("path") != auto_emu.port for d in hwi("enumerate"))
    [dev] = [d for d in hwi("--emulators", "enumerate") if d.get("path") == auto_emu.port]
    assert dev["fingerprint"] == FP and dev["type"] == "amanat"
    found = hwi("enumerate", env={"AMANAT_HWI_EMULATORS": "1"})
    assert any(d.get("path") == auto_emu.port for d in found)


def test_core_getdescriptors(auto_emu):
    d = hwi("--emulators", "--fingerprint", FP, "--chain", "regtest", "getdescriptors", "--account", "0")
    assert len(d["receive"]) == 4 and len(d["internal"]) == 4
    assert all("tpub" in x and f"[{FP}/" in x and "#" in x for x in d["receive"] + d["internal"])


@pytest.mark.parametrize("purpose,template", [(84, "wpkh(%s)"), (86, "tr(%s)"), (49, "sh(wpkh(%s))")])
def test_core_displayaddress(auto_emu, purpose, template):
    pub = ROOT.derive(f"m/{purpose}h/1h/0h/0/0").key
    key = pub.xonly().hex() if purpose == 86 else pub.sec().hex()
    desc = add_checksum(template % f"[{FP}/{purpose}h/1h/0h/0/0]{key}")
    want = {84: script.p2wpkh(pub), 86: script.p2tr(pub), 49: script.p2sh(script.p2wpkh(pub))}[purpose].address(NET)
    got = hwi("--emulators", "--fingerprint", FP, "--chain", "regtest", "displayaddress", "--desc", desc)
    assert got == {"address": want}


@pytest.mark.parametrize("quoted", [False, True])
def test_core_signtx_over_stdin(auto_emu, quoted):
    accts = {k: txbuild.Account(k, ROOT.derive(txbuild.account_path(k, "regtest")).to_public(),
                                ROOT.my_fingerprint, txbuild.account_path(k, "regtest")) for k in txbuild.PURPOSE}
    coins = [(accts[k], i, 50_000) for i, k in enumerate(txbuild.PURPOSE)]
    built = txbuild.build_spend(coins, script.p2wpkh(ROOT.derive("m/0/0").key), 120_000, 1_000,
                                change=(accts["p2tr"], 1), tag=200 + quoted)
    b64 = base64.b64encode(built.psbt.serialize()).decode()
    line = f'signtx "{b64}"' if quoted else f"signtx {b64}"
    res = hwi("--stdin", "--fingerprint", FP, "--chain", "regtest", stdin=line + "\n",
              env={"AMANAT_HWI_EMULATORS": "1"})
    psbt = PSBT.parse(base64.b64decode(res["psbt"]))
    kernel.verify_transaction(finalize.finalize(psbt), built.spent)


def test_chain_mismatch(auto_emu):
    res = hwi("--emulators", "--fingerprint", FP, "--chain", "main", "getdescriptors", "--account", "0")
    assert res["code"] == -7 and "regtest" in res["error"]


def test_audit_trail(auto_emu):
    """The device's own record of what it showed, exported by the host (in
    several 4 KiB reads once the trail is long)."""
    with auto_emu.client() as c:
        for i in range(40):
            pub = ROOT.derive(f"m/84h/1h/0h/0/{i}").key.sec().hex()
            c.display_address(add_checksum(f"wpkh([{FP}/84h/1h/0h/0/{i}]{pub})"))
        records = c.audit_trail()
    assert len(json.dumps(records)) > 8192
    log = auto_emu.screens()  # the emulator's trail is its screens log
    assert records == log[:-1] and log[-1]["screen"] == "checkpoint"  # the session that displayed them signed them
    assert [r["screen"] for r in records[:4]] == ["boot", "setup_create", "setup_kind", "setup_mnemonic"]
    assert all("answer" in r for r in records if r["screen"] not in ("boot", "setup", "pin", "checkpoint"))
    out = run("amanat", "audit", "--json", "--last", "2", "--port", auto_emu.port)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["total"] == len(log) and got["records"] == log[-2:]
    table = run("amanat", "audit", "--port", auto_emu.port).stdout
    assert "setup_mnemonic" in table


@pytest.mark.parametrize("path,base,addr", [("m/84h/1h/0h/0/3", 39, "wpkh"), ("m/49h/1h/0h/0/3", 35, "sh-wpkh"),
                                            ("m/44h/1h/0h/0/3", 31, "pkh")])
def test_signmessage_for_the_address_the_path_implies(auto_emu, path, base, addr):
    from coincurve import PublicKey
    from embit import compact, hashes

    got = hwi("--emulators", "-f", FP, "--chain", "regtest", "signmessage", "reserve audit 2026", path)
    sig = base64.b64decode(got["signature"])
    assert base <= sig[0] < base + 4
    digest = hashes.double_sha256(b"\x18Bitcoin Signed Message:\n" + compact.to_bytes(18) + b"reserve audit 2026")
    pub = PublicKey.from_signature_and_message(sig[1:] + bytes([(sig[0] - 27) & 3]), digest, hasher=None)
    key = ROOT.derive(path).key
    assert pub.format() == key.get_public_key().sec()
    expected = {"wpkh": script.p2wpkh(key), "sh-wpkh": script.p2sh(script.p2wpkh(key)),
                "pkh": script.p2pkh(key)}[addr].address(NET)
    shown = [s for s in auto_emu.screens() if s["screen"] == "sign_message"][-1]
    assert shown["address"] == expected and shown["path"] == path

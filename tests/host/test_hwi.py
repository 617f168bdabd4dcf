"""`amanat-hwi` against fake devices: HWI's commands and Bitcoin Core's calls."""

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from coincurve import PublicKey
from embit import compact, hashes
from embit.descriptor import Descriptor
from embit.descriptor.checksum import add_checksum, checksum
from embit.networks import NETWORKS
from embit.psbt import PSBT

import fake_client as fc
from amanat import hwi, kernel, txbuild
from amanat.finalize import finalize

ROOT = fc.root_key()
FP = ROOT.my_fingerprint.hex()  # 73c5da0a
OTHER_FP = fc.root_key(fc.OTHER_MNEMONIC).my_fingerprint.hex()
PORT = "/dev/ttyUSB0"
CORE = ["--fingerprint", FP, "--chain", "regtest"]


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(hwi.EMULATORS_ENV, raising=False)


@pytest.fixture
def devices(monkeypatch):
    def install(*devs):
        return fc.install(monkeypatch, *devs)

    return install


@pytest.fixture
def one(devices):
    return devices(fc.FakeDevice(PORT))[PORT]


@pytest.fixture
def run(capsys, monkeypatch):
    """Run amanat-hwi in-process: (exit status, the one JSON line it printed)."""

    def call(*argv, stdin=None):
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        status = hwi.main(list(argv))
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1, lines
        return status, json.loads(lines[0])

    return call


def ok(run, *argv, **kw):
    status, result = run(*argv, **kw)
    assert status == 0
    assert not (isinstance(result, dict) and "error" in result), result
    return result


def fails(run, code, *argv, **kw):
    status, result = run(*argv, **kw)
    assert status == 0, "HWI reports errors in JSON with exit status 0"
    assert set(result) == {"error", "code"} and result["code"] == code, result
    return result["error"]


def xpub(path, root=ROOT):
    return root.derive(path).to_public().to_base58()


def spend_psbt(kinds=("p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2tr")):
    accts = {}
    for k in kinds:
        path = txbuild.account_path(k, "regtest")
        accts[k] = txbuild.Account(k, ROOT.derive(path).to_public(), ROOT.my_fingerprint, path)
    coins = [(accts[k], n, 80_000) for n, k in enumerate(kinds)]
    other = fc.root_key(fc.OTHER_MNEMONIC).derive("m/84h/1h/0h").to_public()
    pay_to = txbuild.Account("p2wpkh", other, b"\0" * 4, "m/84h/1h/0h").output(0, 0)
    return txbuild.build_spend(coins, pay_to, 100_000, 2_000, change=(accts[kinds[0]], 1))


# ---------------------------------------------------------------- enumerate


def test_enumerate(run, one):
    assert ok(run, "enumerate") == [{
        "type": "amanat", "model": "amanat", "label": None, "path": PORT,
        "needs_pin_sent": False, "needs_passphrase_sent": False, "fingerprint": FP,
    }]


def test_enumerate_nothing(run, devices):
    devices()
    assert ok(run, "enumerate") == []


def test_enumerate_lists_emulators_only_when_asked(run, devices, monkeypatch):
    devices(fc.FakeDevice("/dev/pts/7", emulator=True))
    assert ok(run, "enumerate") == []  # as HWI's test suite expects
    [entry] = ok(run, "--emulators", "enumerate")
    assert entry["model"] == "amanat_emulator" and entry["type"] == "amanat"
    assert entry["path"] == "/dev/pts/7" and entry["fingerprint"] == FP
    monkeypatch.setenv(hwi.EMULATORS_ENV, "1")
    assert ok(run, "enumerate") == [entry]


def test_enumerate_uninitialized_locked_and_silent_devices(run, devices):
    devices(fc.FakeDevice("/dev/a", initialized=False), fc.FakeDevice("/dev/b", locked=True),
            fc.FakeDevice("/dev/c", answers=False), fc.FakeDevice("/dev/d", mnemonic=fc.OTHER_MNEMONIC))
    a, b, c, d = ok(run, "enumerate")
    assert "fingerprint" not in a and (a["error"], a["code"]) == ("Not initialized", -18)
    assert "fingerprint" not in b and b["code"] == -12 and "locked" in b["error"]
    assert c["code"] == -3 and c["error"].startswith("Could not open client or get fingerprint information: ")
    assert d["fingerprint"] == OTHER_FP and "error" not in d


# ---------------------------------------------------------------- device selection


def test_no_device(run, devices):
    devices()
    assert fails(run, -3, *CORE, "getdescriptors", "--account", "0") == \
        "Could not find device with specified fingerprint or type"


def test_fingerprint_picks_among_devices(run, devices):
    devices(fc.FakeDevice("/dev/a", mnemonic=fc.OTHER_MNEMONIC), fc.FakeDevice("/dev/b"))
    other = fc.root_key(fc.OTHER_MNEMONIC)
    assert ok(run, *CORE, "getmasterxpub") == {"xpub": xpub("m/84h/1h/0h")}
    assert ok(run, "-f", OTHER_FP.upper(), "--chain", "regtest", "getmasterxpub") == \
        {"xpub": xpub("m/84h/1h/0h", other)}
    fails(run, -3, "-f", "00000001", "--chain", "regtest", "getmasterxpub")


def test_two_devices_with_the_same_fingerprint(run, devices):
    devices(fc.FakeDevice("/dev/a"), fc.FakeDevice("/dev/b"))
    err = fails(run, -7, *CORE, "getmasterxpub")
    assert FP in err and "/dev/a" in err and "/dev/b" in err and "--device-path" in err
    assert ok(run, "-d", "/dev/b", *CORE, "getmasterxpub") == {"xpub": xpub("m/84h/1h/0h")}


def test_device_type_needs_exactly_one_device(run, devices):
    devs = devices(fc.FakeDevice("/dev/a"))
    assert "xpub" in ok(run, "-t", "amanat", "--chain", "regtest", "getmasterxpub")
    devs["/dev/b"] = fc.FakeDevice("/dev/b", mnemonic=fc.OTHER_MNEMONIC)
    fails(run, -7, "-t", "amanat", "--chain", "regtest", "getmasterxpub")


def test_selection_errors(run, one):
    fails(run, -1, "--chain", "regtest", "getmasterxpub")
    fails(run, -4, "-t", "trezor", "--chain", "regtest", "getmasterxpub")
    fails(run, -7, "-f", "73c5da0", "--chain", "regtest", "getmasterxpub")
    fails(run, -3, "-d", "/dev/nothing", "--chain", "regtest", "getmasterxpub")
    fails(run, -3, "-d", PORT, "-f", OTHER_FP, "--chain", "regtest", "getmasterxpub")
    assert "xpub" in ok(run, "-d", PORT, "-f", FP, "--chain", "regtest", "getmasterxpub")


def test_emulator_found_by_fingerprint_only_with_flag_or_env(run, devices, monkeypatch):
    devices(fc.FakeDevice("/dev/pts/7", emulator=True))
    fails(run, -3, *CORE, "getmasterxpub")
    assert "xpub" in ok(run, "--emulators", *CORE, "getmasterxpub")
    monkeypatch.setenv(hwi.EMULATORS_ENV, "1")  # what Core, which cannot pass --emulators, relies on
    assert "xpub" in ok(run, *CORE, "getmasterxpub")


def test_uninitialized_and_locked_devices(run, devices):
    devices(fc.FakeDevice("/dev/a", initialized=False), fc.FakeDevice("/dev/b", locked=True))
    fails(run, -18, "-d", "/dev/a", "--chain", "regtest", "getmasterxpub")
    fails(run, -12, "-d", "/dev/b", "--chain", "regtest", "getmasterxpub")


@pytest.mark.parametrize("chain,network", [("regtest", "main"), ("main", "regtest"), ("main", "test"),
                                           ("test", "main"), ("testnet4", "regtest"), ("regtest", "test")])
def test_chain_must_match_the_device(run, devices, chain, network):
    devices(fc.FakeDevice(PORT, network=network))
    err = fails(run, -7, "-f", FP, "--chain", chain, "getmasterxpub")
    assert chain in err and network in err


@pytest.mark.parametrize("chain,network", [("test", "test"), ("testnet4", "test"), ("signet", "signet"),
                                           ("signet", "test"), ("test", "signet")])
def test_chain_matches(run, devices, chain, network):
    # testnet and signet share keys and tb1 addresses: a device of either answers both
    devices(fc.FakeDevice(PORT, network=network))
    assert ok(run, "-f", FP, "--chain", chain, "getmasterxpub")["xpub"].startswith("tpub")
    shown = ok(run, "-f", FP, "--chain", chain, "displayaddress", "--path", "m/84h/1h/0h/0/0")["address"]
    assert shown.startswith("tb1q")


def test_default_chain_is_main(run, devices):
    devices(fc.FakeDevice(PORT, network="main"))
    main_root = fc.root_key(network="main")
    assert ok(run, "-f", FP, "getmasterxpub") == {"xpub": xpub("m/84h/0h/0h", main_root)}
    devices(fc.FakeDevice(PORT))  # regtest
    fails(run, -7, "-f", FP, "getmasterxpub")


# ---------------------------------------------------------------- Core: createwallet


def test_core_getdescriptors(run, one):
    got = ok(run, *CORE, "getdescriptors", "--account", "0")
    assert ("get_descriptors", 0) in one.calls
    assert list(got) == ["receive", "internal"]
    for branch, chain in (("receive", 0), ("internal", 1)):
        descs = got[branch]
        assert [d.split("(")[0] for d in descs] == ["pkh", "sh", "wpkh", "tr"]
        for d, purpose in zip(descs, (44, 49, 84, 86)):
            body, chk = d.split("#")
            assert chk == checksum(body) and "'" not in d
            origin = f"m/{purpose}h/1h/0h"
            assert f"[{FP}/{purpose}h/1h/0h]{xpub(origin)}/{chain}/*" in body
            assert Descriptor.from_string(body).is_wildcard


def test_getdescriptors_passes_the_device_answer_through(run, devices):
    devs = devices(fc.FakeDevice(PORT))
    expected = sys.modules["amanat.client"].Client(PORT).get_descriptors(3)
    assert ok(run, *CORE, "getdescriptors", "--account", "3") == expected
    assert devs[PORT].calls.count(("get_descriptors", 3)) == 2


# ---------------------------------------------------------------- Core: walletdisplayaddress


def core_desc(kind, purpose, index=0, quote="h", change=0):
    """The descriptor Core infers for one of its addresses (walletdisplayaddress)."""
    pub = ROOT.derive(f"m/{purpose}h/1h/0h/{change}/{index}").key
    key = pub.xonly().hex() if kind == "tr" else pub.sec().hex()
    origin = f"{FP}/{purpose}{quote}/1{quote}/0{quote}/{change}/{index}"
    body = {"pkh": "pkh(%s)", "sh": "sh(wpkh(%s))", "wpkh": "wpkh(%s)", "tr": "tr(%s)"}[kind]
    return add_checksum(body % f"[{origin}]{key}")


def core_address(desc):
    return Descriptor.from_string(desc.split("#")[0]).address(NETWORKS["regtest"])


def test_core_displayaddress_wpkh_echoes_the_regtest_address(run, one):
    desc = core_desc("wpkh", 84)
    # abandon..about m/84'/1'/0'/0/0: tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl on testnet
    assert core_address(desc) == "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"
    assert ok(run, *CORE, "displayaddress", "--desc", desc) == {"address": core_address(desc)}
    assert ("display_address", desc) in one.calls


@pytest.mark.parametrize("kind,purpose,prefix", [("pkh", 44, ("m", "n")), ("sh", 49, ("2",)),
                                                 ("wpkh", 84, ("bcrt1q",)), ("tr", 86, ("bcrt1p",))])
@pytest.mark.parametrize("quote", ["h", "'"])
def test_core_displayaddress_every_type(run, one, kind, purpose, prefix, quote):
    desc = core_desc(kind, purpose, index=5, quote=quote)
    address = ok(run, *CORE, "displayaddress", "--desc", desc)["address"]
    assert address == core_address(desc) and address.startswith(prefix)


def test_displayaddress_without_checksum_and_with_xpub(run, one):
    desc = core_desc("wpkh", 84).split("#")[0]
    assert ok(run, *CORE, "displayaddress", "--desc", desc) == {"address": core_address(desc)}
    with_xpub = f"wpkh([{FP}/84h/1h/0h]{xpub('m/84h/1h/0h')}/0/0)"
    assert ok(run, *CORE, "displayaddress", "--desc", with_xpub) == {"address": core_address(desc)}


def test_displayaddress_refuses_what_is_not_ours(run, one):
    good = core_desc("wpkh", 84).split("#")[0]
    fails(run, -7, *CORE, "displayaddress", "--desc", good + "#aaaaaaaa")
    err = fails(run, -7, *CORE, "displayaddress", "--desc", add_checksum(good.replace(FP, OTHER_FP)))
    assert "fingerprint does not match" in err
    wrong_key = ROOT.derive("m/84h/1h/0h/0/1").key.sec().hex()
    other = add_checksum(f"wpkh([{FP}/84h/1h/0h/0/0]{wrong_key})")
    assert "Key in descriptor does not match device" in fails(run, -7, *CORE, "displayaddress", "--desc", other)
    no_origin = add_checksum(f"wpkh({ROOT.derive('m/84h/1h/0h/0/0').key.sec().hex()})")
    assert "origin" in fails(run, -7, *CORE, "displayaddress", "--desc", no_origin)
    for bad in (f"wpkh([{FP}/84h/1h/0h]{xpub('m/84h/1h/0h')}/0/*)", "wsh(multi(1,02aa))", "wpkh(zz)"):
        fails(run, -7, *CORE, "displayaddress", "--desc", bad)
    assert [c for c in one.calls if c[0] == "display_address"] == []


@pytest.mark.parametrize("addr_type,purpose,kind", [("wit", 84, "wpkh"), ("sh_wit", 49, "sh"),
                                                    ("legacy", 44, "pkh"), ("tap", 86, "tr")])
def test_displayaddress_by_path(run, one, addr_type, purpose, kind):
    path = f"m/{purpose}h/1h/0h/1/7"
    got = ok(run, *CORE, "displayaddress", "--path", path, "--addr-type", addr_type)
    assert got == {"address": core_address(core_desc(kind, purpose, index=7, change=1))}
    # the device was sent the account xpub, its origin and the rest of the path
    [sent] = [c[1] for c in one.calls if c[0] == "display_address"]
    template = {"wpkh": "wpkh(%s)", "sh": "sh(wpkh(%s))", "pkh": "pkh(%s)", "tr": "tr(%s)"}[kind]
    origin = f"m/{purpose}h/1h/0h"
    assert sent == add_checksum(template % f"[{FP}/{purpose}h/1h/0h]{xpub(origin)}/1/7")


def test_displayaddress_path_errors(run, one):
    fails(run, -7, *CORE, "displayaddress", "--path", "m/84h/1h/0h/0/*")
    fails(run, -7, *CORE, "displayaddress", "--path", "84h/1h/0h/0/0")
    fails(run, -7, *CORE, "displayaddress", "--path", "m/84x/0")


def test_displayaddress_rejected_on_the_device(run, devices):
    devices(fc.FakeDevice(PORT, reject=True))
    err = fails(run, -14, *CORE, "displayaddress", "--desc", core_desc("wpkh", 84))
    assert "REJECTED" in err


# ---------------------------------------------------------------- Core: send / walletprocesspsbt


@pytest.mark.parametrize("line", ["signtx {}\n", 'signtx "{}"\n', "signtx {}", "signtx {}\n\nignored\n"])
def test_core_signtx_over_stdin(run, one, line):
    built = spend_psbt()
    b64 = built.psbt.to_base64()
    got = ok(run, "--stdin", *CORE, stdin=line.format(b64))
    assert set(got) == {"psbt", "signed"} and got["signed"] is True
    signed = PSBT.from_base64(got["psbt"])
    # every input is now signed validly: finish the transaction and run its scripts
    kernel.verify_transaction(finalize(signed), built.spent)


def test_signtx_on_the_command_line_and_psbt_v2(run, one):
    built = spend_psbt(("p2wpkh", "p2tr"))
    built.psbt.version = 2
    got = ok(run, *CORE, "signtx", built.psbt.to_base64())
    signed = PSBT.from_base64(got["psbt"])
    assert signed.version == 2 and got["signed"] is True


def test_signtx_nothing_signed(run, devices):
    devices(fc.FakeDevice(PORT, tamper="nothing"))
    b64 = spend_psbt().psbt.to_base64()
    assert ok(run, *CORE, "signtx", b64) == {"psbt": b64, "signed": False}


@pytest.mark.parametrize("tamper,words", [("flip", "input 0: invalid"), ("output", "output 0"),
                                          ("drop", "input 0: the device removed field")])
def test_signtx_refuses_a_bad_device_answer(run, devices, tamper, words):
    devices(fc.FakeDevice(PORT, tamper=tamper))
    err = fails(run, -13, "--stdin", *CORE, stdin=f"signtx {spend_psbt().psbt.to_base64()}\n")
    assert words in err


@pytest.mark.parametrize("error,code", [((7, "the officer rejected the transaction"), -14), ((5, "busy"), -15),
                                        ((6, "no seed"), -12), ((8, "bad psbt"), -5), ((9, "fee too high"), -7),
                                        ((12, "oops"), -13), ((3, "no such method"), -8)])
def test_signtx_device_errors(run, devices, error, code):
    devices(fc.FakeDevice(PORT, error=error))
    err = fails(run, code, *CORE, "signtx", spend_psbt().psbt.to_base64())
    assert error[1] in err


def test_signtx_bad_psbt(run, one):
    fails(run, -5, *CORE, "signtx", "not base64!")
    fails(run, -5, *CORE, "signtx", base64.b64encode(b"psbt\xff\x00garbage").decode())
    assert [c for c in one.calls if c[0] == "sign_psbt"] == []


def test_signtx_psbt_not_ours(run, devices):
    # As HWI: no input of this device is no error; the PSBT comes back unchanged, never shown on the device.
    dev = devices(fc.FakeDevice(PORT, mnemonic=fc.OTHER_MNEMONIC))[PORT]
    b64 = spend_psbt().psbt.to_base64()
    assert ok(run, "-f", OTHER_FP, "--chain", "regtest", "signtx", b64) == {"psbt": b64, "signed": False}
    assert not [c for c in dev.calls if c[0] == "sign_psbt"]


# ---------------------------------------------------------------- other HWI commands


@pytest.mark.parametrize("args,path", [([], "m/84h/1h/0h"), (["--addr-type", "legacy"], "m/44h/1h/0h"),
                                       (["--addr-type", "sh_wit", "--account", "3"], "m/49h/1h/3h"),
                                       (["--addr-type", "tap"], "m/86h/1h/0h")])
def test_getmasterxpub(run, one, args, path):
    assert ok(run, *CORE, "getmasterxpub", *args) == {"xpub": xpub(path)}


def test_getxpub(run, one):
    assert ok(run, *CORE, "getxpub", "m/84h/1h/0h") == {"xpub": xpub("m/84h/1h/0h")}
    assert ok(run, *CORE, "getxpub", "m/84'/1'/0'/0") == {"xpub": xpub("m/84h/1h/0h/0")}
    assert ("get_xpub", "m/84h/1h/0h/0") in one.calls  # sent in h notation
    got = ok(run, "--expert", *CORE, "getxpub", "m/84h/1h/0h")
    k = ROOT.derive("m/84h/1h/0h")
    assert got == {"xpub": xpub("m/84h/1h/0h"), "testnet": True, "private": False, "depth": 3,
                   "parent_fingerprint": hashes.hash160(ROOT.derive("m/84h/1h").to_public().key.sec())[:4].hex(),
                   "child_num": 0x80000000, "chaincode": k.chain_code.hex(),
                   "pubkey": k.key.get_public_key().sec().hex()}
    fails(run, -7, *CORE, "getxpub", "84h/1h")
    fails(run, -7, *CORE, "getmasterxpub", "--account", "-1")


def keypool_entry(desc, internal, keypool=True, start=0, end=10):
    return {"desc": add_checksum(desc), "range": [start, end], "timestamp": "now", "internal": internal,
            "keypool": keypool, "active": keypool, "watchonly": True}


def test_getkeypool_default_is_both_chains_of_wit(run, one):
    x = xpub("m/84h/1h/0h")
    assert ok(run, *CORE, "getkeypool", "0", "10") == [
        keypool_entry(f"wpkh([{FP}/84h/1h/0h]{x}/0/*)", False),
        keypool_entry(f"wpkh([{FP}/84h/1h/0h]{x}/1/*)", True),
    ]


def test_getkeypool_all(run, one):
    got = ok(run, *CORE, "getkeypool", "--all", "--account", "2", "0", "10")
    heads = [(e["desc"].split("(")[0], e["internal"]) for e in got]
    assert heads == [(h, i) for h in ("pkh", "wpkh", "sh", "tr") for i in (False, True)]
    assert f"tr([{FP}/86h/1h/2h]{xpub('m/86h/1h/2h')}/1/*)" in got[7]["desc"]
    for e in got:
        body, chk = e["desc"].split("#")
        assert chk == checksum(body)


def test_getkeypool_internal_and_path(run, one):
    x = xpub("m/49h/1h/0h")
    assert ok(run, *CORE, "getkeypool", "--internal", "--addr-type", "sh_wit", "5", "20") == [
        keypool_entry(f"sh(wpkh([{FP}/49h/1h/0h]{x}/1/*))", True, start=5, end=20)]
    assert ok(run, *CORE, "getkeypool", "--nokeypool", "--path", "m/0h/0h/4h/*", "0", "10") == [
        keypool_entry(f"wpkh([{FP}/0h/0h/4h]{xpub('m/0h/0h/4h')}/*)", False, keypool=False)]
    assert ok(run, *CORE, "getkeypool", "--path", "m/84'/1'/0'/0/*", "0", "10") == [
        keypool_entry(f"wpkh([{FP}/84h/1h/0h]{xpub('m/84h/1h/0h')}/0/*)", False)]
    fails(run, -7, *CORE, "getkeypool", "--path", "84h/1h/0h/0/*", "0", "10")
    fails(run, -7, *CORE, "getkeypool", "--path", "m/84h/1h/0h/0", "0", "10")
    fails(run, -7, *CORE, "getkeypool", "--all", "--internal", "0", "10")
    fails(run, -7, *CORE, "getkeypool", "10", "0")


def check_bip137(message: bytes, signature: str, path: str, base: int = 31):
    sig = base64.b64decode(signature)
    digest = hashes.double_sha256(b"\x18Bitcoin Signed Message:\n" + compact.to_bytes(len(message)) + message)
    pub = PublicKey.from_signature_and_message(sig[1:] + bytes([(sig[0] - 27) & 3]), digest, hasher=None)
    assert base <= sig[0] < base + 4 and pub.format() == ROOT.derive(path).key.get_public_key().sec()


@pytest.mark.parametrize("path,base", [("m/44h/1h/0h/0/0", 31), ("m/49h/1h/0h/0/0", 35), ("m/84h/1h/0h/0/0", 39),
                                       ("m/0/7", 31)])
def test_signmessage(run, one, path, base):
    # the header names the address type the path implies (BIP137, as Trezor and Electrum)
    got = ok(run, *CORE, "signmessage", "Amanat test message", path)
    check_bip137(b"Amanat test message", got["signature"], path, base)
    assert ("sign_message", b"Amanat test message", path) in one.calls


def test_signmessage_taproot_is_not_available(run, one):
    assert "BIP137" in fails(run, -9, *CORE, "signmessage", "hi", "m/86h/1h/0h/0/0")


def test_signmessage_header_must_match_the_path(run, one, monkeypatch):
    real = fc.FakeClient.sign_message

    def p2pkh_header(self, message, path, status=None):  # a device that signs for the legacy address
        sig = base64.b64decode(real(self, message, path))
        return base64.b64encode(bytes([31 + (sig[0] - 27) % 4]) + sig[1:]).decode()

    monkeypatch.setattr(fc.FakeClient, "sign_message", p2pkh_header)
    assert "not for a p2wpkh address" in fails(run, -13, *CORE, "signmessage", "hi", "m/84h/1h/0h/0/0")


def test_signmessage_bad_signature_and_rejection(run, devices):
    devs = devices(fc.FakeDevice(PORT, tamper="flip"))
    fails(run, -13, *CORE, "signmessage", "hello", "m/44h/1h/0h/0/0")
    devs[PORT].tamper, devs[PORT].reject = None, True
    fails(run, -14, *CORE, "signmessage", "hello", "m/44h/1h/0h/0/0")


def test_unsupported_commands(run, one):
    # with HWI's own flags too: "not available" (-9), never a usage error
    for cmd in (["promptpin"], ["sendpin", "1234"], ["togglepassphrase"], ["setup"], ["wipe"], ["backup"],
                ["setup", "--label", "vault"], ["restore", "--word_count", "24"], ["restore", "-w", "12"],
                ["backup", "--label", "x", "--backup_passphrase", "y"]):
        fails(run, -9, *CORE, *cmd)


def test_password_is_refused(run, one):
    assert "on the device" in fails(run, -7, "-p", "secret", *CORE, "getmasterxpub")
    fails(run, -7, "--stdinpass", "enumerate")
    # the empty passphrase tools pass by default is "none"
    assert ok(run, "-p", "", *CORE, "getmasterxpub")["xpub"] == xpub("m/84h/1h/0h")


def test_a_busy_device_is_busy_not_missing(run, devices):
    devs = devices(fc.FakeDevice(PORT), fc.FakeDevice("/dev/ttyUSB1", mnemonic=fc.OTHER_MNEMONIC))
    devs[PORT].busy = True
    listed = ok(run, "enumerate")
    assert [e["path"] for e in listed] == [PORT, "/dev/ttyUSB1"]
    assert not any("error" in e for e in listed)  # one error entry fails Core's enumeratesigners
    assert listed[0]["fingerprint"] == FP and listed[0]["busy"] is True
    assert "busy" in fails(run, -15, *CORE, "getmasterxpub")
    fails(run, -15, "-d", PORT, "--chain", "regtest", "getmasterxpub")
    assert ok(run, "-f", OTHER_FP, "--chain", "regtest", "getmasterxpub")["xpub"].startswith("tpub")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_one_device_exposed_for_bitcoin_core(run, devices, monkeypatch, how):
    devices(fc.FakeDevice(PORT), fc.FakeDevice("/dev/ttyUSB1", mnemonic=fc.OTHER_MNEMONIC),
            fc.FakeDevice("/dev/ttyUSB2", initialized=False))
    both = ok(run, "enumerate")
    assert len(both) == 3 and "error" in both[2]  # Core would refuse this list
    pick = ["--only", OTHER_FP] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("AMANAT_HWI_FINGERPRINT", OTHER_FP)
    [one] = ok(run, *pick, "enumerate")
    assert one["fingerprint"] == OTHER_FP and "error" not in one
    # Core then names the fingerprint it was given; another one is not exposed
    assert ok(run, *pick, "-f", OTHER_FP, "--chain", "regtest", "getmasterxpub")["xpub"].startswith("tpub")
    assert "only" in fails(run, -3, *pick, "-f", FP, "--chain", "regtest", "getmasterxpub")
    assert ok(run, *pick, "-t", "amanat", "--chain", "regtest", "getmasterxpub")["xpub"].startswith("tpub")


# ---------------------------------------------------------------- usage errors, help


@pytest.mark.parametrize("argv", [["--chain", "bitcoin", "enumerate"], [], ["frobnicate"],
                                  ["displayaddress"], ["signtx"]])
def test_usage_errors_exit_2(run, one, argv):
    status, result = run(*argv)
    assert status == 2 and result["code"] == -2 and result["error"].startswith("amanat-hwi") and ": error: " in result["error"]


def test_stdin_without_a_command(run, one):
    status, result = run("--stdin", *CORE, stdin="")
    assert status == 2 and result["code"] == -2


def test_help(run, capsys):
    status = hwi.main(["--help"])
    captured = capsys.readouterr()
    assert status == 0
    assert json.loads(captured.out) == {"error": "Help text requested", "code": -17}
    assert hwi.EMULATORS_ENV in captured.err and "--fingerprint" in captured.err


def test_console_script():
    exe = Path(sys.executable).parent / "amanat-hwi"
    if not exe.exists():
        pytest.skip("amanat-hwi is not installed beside this interpreter")
    p = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0
    assert json.loads(p.stdout.splitlines()[0]) == {"error": "Help text requested", "code": -17}
    assert hwi.EMULATORS_ENV in p.stderr
    p = subprocess.run([str(exe), "--chain", "bitcoin", "enumerate"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and json.loads(p.stdout)["code"] == -2


# ---------------------------------------------------------------- multisig wallets

MS_PATH = "m/48h/1h/0h/2h"
COSIGNERS = [ROOT, fc.root_key(fc.OTHER_MNEMONIC), fc.root_key("zoo " * 11 + "wrong")]
NUMS = "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0"


def ms_key(root, tail="/<0;1>/*"):
    return f"[{root.my_fingerprint.hex()}/{MS_PATH[2:]}]{xpub(MS_PATH, root)}{tail}"


def ms_desc(template="wsh(sortedmulti(2,{}))", roots=COSIGNERS, tail="/<0;1>/*"):
    return template.format(",".join(ms_key(r, tail) for r in roots))


WSH = add_checksum(ms_desc())
TR = add_checksum(ms_desc(f"tr({NUMS},sortedmulti_a(2,{{}}))"))


def expected_address(desc, index, change=False):
    """Independent of amanat.policy: embit on the multipath descriptor."""
    d = Descriptor.from_string(desc.split("#")[0])
    return d.derive(index, branch_index=1 if change else 0).address(NETWORKS["regtest"])


def registered(run, desc=WSH, name="Treasury"):
    return ok(run, *CORE, "registerdescriptor", name, desc)["registration"]


@pytest.mark.parametrize("desc", [WSH, TR])
def test_registerdescriptor(run, one, desc):
    reg = registered(run, desc)
    name, stored, dtype, proof = hwi.decode_registration(reg)
    assert (name, stored, dtype) == ("Treasury", desc, "amanat") and len(proof) == 32
    assert one.wallets == {"Treasury": desc}
    # HWI's serialization: b"rdesc", version 1, then four length-prefixed strings
    raw = base64.b64decode(reg)
    assert raw[:6] == b"rdesc\x01" and raw[6] == len("Treasury") and raw.endswith(b"\x20" + proof)


def test_registerdescriptor_accepts_quotes_and_bip388_shorthand(run, one):
    desc = WSH.split("#")[0].replace("/<0;1>/*", "/**").replace("h/", "'/").replace("h]", "']")
    _, stored, _, _ = hwi.decode_registration(registered(run, desc))
    assert stored == WSH  # the canonical form the device keeps


def test_registerdescriptor_again_is_the_same_proof(run, one):
    assert registered(run) == registered(run)
    assert sum(1 for c in one.calls if c[0] == "register_wallet/prompt") == 1


@pytest.mark.parametrize("desc, words", [
    (ms_desc(roots=COSIGNERS[1:]), "no key of this device"),
    (ms_desc(tail="/0/*"), "<0;1>"),
    (ms_desc("wsh(sortedmulti(4,{}))"), "threshold 4 of 3"),
    ("wpkh(" + ms_key(ROOT) + ")", "unsupported form"),
    (WSH[:-1] + ("x" if WSH[-1] != "x" else "y"), "checksum"),
])
def test_registerdescriptor_refusals(run, one, desc, words):
    assert words in fails(run, -7, *CORE, "registerdescriptor", "Treasury", desc)
    assert one.wallets == {}


def test_registerdescriptor_name_and_rejection(run, devices):
    devs = devices(fc.FakeDevice(PORT, reject=True))
    assert "1 to 16" in fails(run, -7, *CORE, "registerdescriptor", "a-much-too-long-name", WSH)
    fails(run, -14, *CORE, "registerdescriptor", "Treasury", WSH)
    assert devs[PORT].wallets == {}


def test_register_bip388_policy(run, one):
    keys = sum((["--key", ms_key(r, "")] for r in COSIGNERS), [])
    got = ok(run, *CORE, "register", "--policy-name", "Vault", "--policy-desc",
             "wsh(sortedmulti(2,@0/**,@1/**,@2/**))", *keys)
    name, stored, _, proof = hwi.decode_registration(got["registration"])
    assert (name, stored, got["hmac"]) == ("Vault", WSH, proof.hex())
    assert "placeholder" in fails(run, -7, *CORE, "register", "--name", "V", "--desc",
                                  "wsh(sortedmulti(2,@1/**,@0/**))", *keys[:4])


@pytest.mark.parametrize("desc", [WSH, TR])
@pytest.mark.parametrize("flags, change", [([], False), (["--change"], True), (["--multipath-index", "1"], True)])
def test_displayaddress_registered(run, one, desc, flags, change):
    reg = registered(run, desc)
    got = ok(run, *CORE, "displayaddress", "--registration", reg, "--index", "7", *flags)
    assert got == {"address": expected_address(desc, 7, change), "index": 7, "multipath_index": int(change)}
    assert ("wallet_address", "Treasury", 7, change) in one.calls


def test_displayaddress_registration_errors(run, devices):
    devs = devices(fc.FakeDevice(PORT))
    reg = registered(run)
    name, desc, dtype, proof = hwi.decode_registration(reg)
    forged = hwi.encode_registration(name, desc, bytes(32))
    assert "not this device's" in fails(run, -7, *CORE, "displayaddress", "--registration", forged, "--index", "0")
    assert "--index" in fails(run, -7, *CORE, "displayaddress", "--registration", reg)
    assert "multipath" in fails(run, -7, *CORE, "displayaddress", "--registration", reg, "--index", "0",
                                "--multipath-index", "2")
    assert "Invalid registration" in fails(run, -7, *CORE, "displayaddress", "--registration", "bm90IGl0", "--index", "0")
    other = base64.b64encode(base64.b64decode(reg).replace(b"\x06amanat", b"\x06ledger")).decode()
    assert "ledger" in fails(run, -7, *CORE, "displayaddress", "--registration", other, "--index", "0")
    devs[PORT].wallets.clear()  # deleted on the device since
    assert "no wallet" in fails(run, -7, *CORE, "displayaddress", "--registration", reg, "--index", "0")
    devs[PORT].wallets["Treasury"] = WSH
    devs[PORT].reject = True
    fails(run, -14, *CORE, "displayaddress", "--registration", reg, "--index", "0")


def core_form(desc, change, index):
    """The descriptor Bitcoin Core infers for one address: hex keys, full origins."""
    d = Descriptor.from_string(desc.split("#")[0]).derive(index, branch_index=change)
    tr = desc.startswith("tr(")
    keys = []
    for root in COSIGNERS:
        pub = root.derive(f"{MS_PATH}/{change}/{index}").key
        keys.append(f"[{root.my_fingerprint.hex()}/{MS_PATH[2:]}/{change}/{index}]"
                    + (pub.xonly().hex() if tr else pub.sec().hex()))
    body = (f"tr({NUMS},sortedmulti_a(2,{{}}))" if tr else "wsh(sortedmulti(2,{}))").format(",".join(keys))
    assert Descriptor.from_string(body).script_pubkey() == d.script_pubkey()
    return add_checksum(body)


@pytest.mark.parametrize("desc", [WSH, TR])
def test_displayaddress_multisig_descriptor(run, one, desc):
    registered(run, desc)
    at_index = add_checksum(desc.split("#")[0].replace("/<0;1>/*", "/1/5"))
    assert ok(run, *CORE, "displayaddress", "--desc", at_index) == {"address": expected_address(desc, 5, True)}
    assert ("display_address", at_index) in one.calls
    # as Bitcoin Core infers it: hex keys, which the host maps to the registered wallet
    assert ok(run, *CORE, "displayaddress", "--desc", core_form(desc, 0, 3)) == {"address": expected_address(desc, 3)}
    assert ("display_address", desc.split("#")[0].replace("/<0;1>/*", "/0/3")) in one.calls


def test_displayaddress_multisig_refusals(run, one):
    at = ms_desc(tail="/0/5")
    assert "one address" in fails(run, -7, *CORE, "displayaddress", "--desc", WSH)
    assert "fingerprint does not match" in fails(run, -7, *CORE, "displayaddress", "--desc",
                                                 ms_desc(roots=COSIGNERS[1:], tail="/0/5"))
    wrong = at.replace(f"[{FP}/48h/1h/0h/2h]", f"[{FP}/48h/1h/1h/2h]")
    assert "does not match device" in fails(run, -7, *CORE, "displayaddress", "--desc", wrong)
    assert "not a registered wallet" in fails(run, -7, *CORE, "displayaddress", "--desc", at)
    assert "not a wallet registered" in fails(run, -7, *CORE, "displayaddress", "--desc", core_form(WSH, 0, 3))


def test_signtx_with_a_registration(run, one):
    reg = registered(run)
    psbt = base64.b64encode(spend_psbt().psbt.serialize()).decode()
    assert ok(run, *CORE, "signtx", psbt, "--registration", reg)["signed"] is True
    name, desc, _, _ = hwi.decode_registration(reg)
    forged = hwi.encode_registration(name, desc, bytes(32))
    one.calls.clear()
    assert "not this device's" in fails(run, -7, *CORE, "signtx", psbt, "--registration", forged)
    assert not any(c[0] == "sign_psbt" for c in one.calls)

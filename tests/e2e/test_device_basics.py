"""The emulated device over its pty: identity, keys, addresses, lifecycle."""

import pytest
from embit import bip32, bip39, script
from embit.descriptor import Descriptor
from embit.descriptor.checksum import add_checksum, checksum
from embit.networks import NETWORKS

from amanat import emulator
from amanat.descriptors import DescriptorError
from amanat.errors import DeviceError

from e2e_support import MNEMONIC, Emu

NET = NETWORKS["regtest"]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
FP = ROOT.my_fingerprint.hex()


def test_info(auto_emu):
    with auto_emu.client() as c:
        i = c.info()
    assert i["protocol"] == 1
    assert i["network"] == "regtest"
    assert i["initialized"] is True and i["locked"] is False
    assert i["fingerprint"] == ROOT.my_fingerprint
    assert i["model"] == "amanat-emulator"


@pytest.mark.parametrize("path", ["m/84h/1h/0h", "m/86'/1'/5'", "m/0", "m/44h/1h/0h/0/7", "m"])
def test_xpub_matches_host(auto_emu, path):
    want = ROOT.derive(path).to_public()
    want.version = NET["xpub"]
    with auto_emu.client() as c:
        assert c.get_xpub(path) == want.to_base58()


@pytest.mark.parametrize("path", ["84h/0h", "m/abc", "m/2147483648", "m/1/2/3/4/5/6/7/8/9", "m//1", "m/-1"])
def test_bad_path_is_bad_params(auto_emu, path):
    # straight on the line: the client refuses most of these itself
    with auto_emu.client() as c:
        with pytest.raises(DeviceError) as e:
            c.t.call("get_xpub", {"path": path})
        assert e.value.name == "BAD_PARAMS"
        assert c.info()["protocol"] == 1  # still answering


def test_the_client_sends_typed_paths_in_h_notation(auto_emu):
    with auto_emu.client() as c:
        assert c.get_xpub("m/84H/1H/0H") == c.get_xpub("m/84h/1h/0h")
        with pytest.raises(DescriptorError):
            c.get_xpub("m/abc")


def test_descriptors(auto_emu):
    with auto_emu.client() as c:
        d = c.get_descriptors(3)
    assert len(d["receive"]) == len(d["internal"]) == 4
    for chain, descs in ((0, d["receive"]), (1, d["internal"])):
        for text, purpose in zip(descs, (44, 49, 84, 86)):
            body, chk = text.split("#")
            assert checksum(body) == chk
            assert f"[{FP}/{purpose}h/1h/3h]tpub" in body and body.endswith(f"/{chain}/*)" + (")" if purpose == 49 else ""))
            desc = Descriptor.from_string(body)
            want = ROOT.derive(f"m/{purpose}h/1h/3h/{chain}/9").key
            assert desc.derive(9).script_pubkey() == _spk(purpose, want)


def _spk(purpose, pub):
    return {44: script.p2pkh(pub), 49: script.p2sh(script.p2wpkh(pub)),
            84: script.p2wpkh(pub), 86: script.p2tr(pub)}[purpose]


@pytest.mark.parametrize("purpose,template", [(84, "wpkh(%s)"), (49, "sh(wpkh(%s))"), (44, "pkh(%s)"), (86, "tr(%s)")])
def test_display_address_core_form(auto_emu, purpose, template):
    """Bitcoin Core sends a descriptor with a plain key and its full origin
    and wants the address echoed exactly."""
    path = f"m/{purpose}h/1h/0h/0/4"
    pub = ROOT.derive(path).key
    keyhex = pub.xonly().hex() if purpose == 86 else pub.sec().hex()
    desc = add_checksum(template % f"[{FP}/{purpose}h/1h/0h/0/4]{keyhex}")
    want = _spk(purpose, pub).address(NET)
    with auto_emu.client() as c:
        assert c.display_address(desc) == want
    assert want.startswith(("bcrt1", "m", "n", "2"))
    shown = [s for s in auto_emu.screens() if s["screen"] == "display_address"][-1]
    assert shown["address"] == want and shown["answer"] == "approve"


def test_display_address_xpub_form(auto_emu):
    acct = ROOT.derive("m/84h/1h/0h").to_public()
    acct.version = NET["xpub"]
    desc = f"wpkh([{FP}/84h/1h/0h]{acct.to_base58()}/1/12)"
    with auto_emu.client() as c:
        assert c.display_address(desc) == script.p2wpkh(acct.derive([1, 12]).key).address(NET)


@pytest.mark.parametrize("desc,why", [
    ("wpkh([deadbeef/84h/1h/0h/0/0]%s)", "not this device"),
    ("wpkh([{fp}/84h/1h/0h/0/1]%s)", "not this device's key"),
    ("wpkh([{fp}/84h/1h/0h/0/0]%s)#aaaaaaaa", "checksum"),
    ("wsh(pk([{fp}/84h/1h/0h/0/0]%s))", "only pkh"),
])
def test_display_address_refusals(auto_emu, desc, why):
    pub = ROOT.derive("m/84h/1h/0h/0/0").key.sec().hex()
    with auto_emu.client() as c:
        with pytest.raises(DeviceError) as e:
            c.display_address(desc.replace("{fp}", FP) % pub)
        assert e.value.name == "BAD_PARAMS" and why in e.value.message


def test_ranged_descriptor_is_refused(auto_emu):
    with auto_emu.client() as c:
        d = c.get_descriptors(0)["receive"][2]
        with pytest.raises(DeviceError) as e:
            c.display_address(d)
        assert "one address" in e.value.message


def test_officer_rejects_and_ping_while_busy(manual_emu):
    """While a prompt waits, ping answers with what the device is doing,
    other requests get BUSY, and the officer's reject ends the request."""
    pub = ROOT.derive("m/84h/1h/0h/0/0").key.sec().hex()
    desc = add_checksum(f"wpkh([{FP}/84h/1h/0h/0/0]{pub})")
    with manual_emu.client() as c, manual_emu.debuglink() as dl:
        rid = c.t.send("display_address", {"descriptor": desc})
        screen = dl.wait_screen("display_address")
        assert screen["address"].startswith("bcrt1")
        assert c.t.call("ping") == {"busy": "display_address", "progress": None}
        with pytest.raises(DeviceError) as e:
            c.get_xpub("m/0")
        assert e.value.name == "BUSY"
        dl.reject()
        with pytest.raises(DeviceError) as e:
            c.t.wait(rid, 10)
        assert e.value.name == "REJECTED"
        assert c.t.call("ping") == {"busy": None, "progress": None}
    assert manual_emu.answered()[-1]["answer"] == "reject"


def test_restart_keeps_flash_and_pin_is_checked(tmp_path):
    e = Emu(tmp_path, mnemonic=MNEMONIC, pin="2468").start()
    e.stop()
    # Wrong PIN: the launcher reports it; the device counts the failure.
    with pytest.raises(Exception) as err:
        Emu(tmp_path, pin="1357").start()
    assert "PIN" in str(err.value)
    e = Emu(tmp_path, pin="2468").start()
    try:
        with e.client() as c:
            assert c.info()["fingerprint"] == ROOT.my_fingerprint
        # Neither the words nor the PIN are in flash or the screens log.
        img = (tmp_path / "flash.img").read_bytes()
        for secret in (MNEMONIC.split()[0].encode(), b"2468", bip39.mnemonic_to_bytes(MNEMONIC)):
            assert secret not in img
        assert b"2468" not in (tmp_path / "screens.jsonl").read_bytes()
    finally:
        e.stop()


def test_uninitialized_device(tmp_path):
    e = Emu(tmp_path).start()
    try:
        with e.client() as c, e.debuglink() as dl:
            i = c.info()
            assert i["initialized"] is False and i["fingerprint"] is None
            with pytest.raises(DeviceError) as err:
                c.get_xpub("m/0")
            assert err.value.name == "NOT_READY"
            dl.wait_screen("setup_create")
            dl.reject()
            dl.wait_screen("setup_kind")
            dl.reject()  # BIP39 words, not SLIP39 shares
            dl.wait_screen("setup_mnemonic")
            dl.type_text("abandon abandon abandon")
            screen = dl.wait_screen("setup_mnemonic")
            assert "Invalid" in screen["error"]
            assert c.t.call("ping") == {"busy": "setup_mnemonic", "progress": None}
    finally:
        e.stop()


def test_setup_shows_the_fingerprint_and_a_reject_starts_again(tmp_path):
    e = Emu(tmp_path).start()
    try:
        with e.debuglink() as dl, e.client() as c:
            dl.wait_screen("setup_create")
            dl.reject()
            dl.wait_screen("setup_kind")
            dl.reject()
            for name, text in (("setup_mnemonic", MNEMONIC), ("setup_pin", "2468"), ("setup_pin_confirm", "2468"),
                               ("setup_passphrase", "typo")):
                dl.wait_screen(name)
                dl.type_text(text)
            check = dl.wait_screen("setup_check")
            want = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC, "typo")).my_fingerprint.hex()
            assert check["fingerprint"] == want and check["fingerprint"] != FP
            dl.reject()
            dl.wait_screen("setup_create")  # setup starts again
            assert c.info()["initialized"] is False
    finally:
        e.stop()
    assert not (tmp_path / "flash.img").read_bytes().count(b"seed.bin")


def test_a_copy_of_the_flash_opens_on_no_other_device(tmp_path):
    """The seed is sealed with the device key too (STATE/device.key, the
    eFuse key's stand-in): the flash image alone, in another emulator, is
    reported as sealed on another device; no PIN is tried or counted."""
    import shutil

    Emu(tmp_path / "a", mnemonic=MNEMONIC, pin="2468").start().stop()
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "flash.img", tmp_path / "b" / "flash.img")
    assert (tmp_path / "a" / "device.key").stat().st_size == 32
    assert (tmp_path / "a" / "device.key").read_bytes() not in (tmp_path / "a" / "flash.img").read_bytes()
    with pytest.raises(emulator.EmulatorError, match="the seed was sealed on another device"):
        Emu(tmp_path / "b", pin="2468").start()
    trail = tmp_path / "b" / "screens.jsonl"
    assert not trail.exists() or "unlock_pin" not in trail.read_text()  # no PIN was asked for, none counted
    e = Emu(tmp_path / "a", pin="2468").start()  # the original still opens
    e.stop()

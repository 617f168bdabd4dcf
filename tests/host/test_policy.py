"""Wallet policies (amanat.policy) and the `amanat wallet` / `amanat limits` commands."""

import json
import re

import pytest
from click.testing import CliRunner
from embit import script
from embit.descriptor import Descriptor
from embit.descriptor.checksum import add_checksum
from embit.networks import NETWORKS

import fake_client as fc
from amanat import cli, policy
from amanat.policy import PolicyError
from conftest import VECTORS

ROOTS = [fc.root_key(), fc.root_key(fc.OTHER_MNEMONIC), fc.root_key("zoo " * 11 + "wrong")]
PATH = "m/48h/1h/0h/2h"
NUMS = policy.NUMS
PORT = "/dev/ttyUSB0"
# SLIP-132 versions of testnet xpubs, as Coldcard and Sparrow export them
VPUB, UPUB, TPUB = "02575483", "024289ef", "043587cf"


def xpub(root, path=PATH, version=None):
    pub = root.derive(path).to_public()
    return pub.to_base58(version=bytes.fromhex(version)) if version else pub.to_base58()


def key(root, tail="/<0;1>/*", path=PATH):
    return f"[{root.my_fingerprint.hex()}/{path[2:]}]{xpub(root, path)}{tail}"


def desc(template="wsh(sortedmulti(2,{}))", roots=ROOTS, tail="/<0;1>/*"):
    return template.format(",".join(key(r, tail) for r in roots))


WSH = add_checksum(desc())


def quotes(text):
    return re.sub(r"([0-9])h", r"\1'", text)


# ---------------------------------------------------------------- descriptors


@pytest.mark.parametrize("text", [
    WSH,
    WSH.split("#")[0],
    quotes(WSH.split("#")[0]),
    add_checksum(quotes(WSH.split("#")[0])),
    WSH.split("#")[0].replace("/<0;1>/*", "/**"),
    "  " + WSH + "\n",
])
def test_descriptor_spellings_give_one_canonical_form(text):
    assert policy.from_descriptor(text).descriptor == WSH


@pytest.mark.parametrize("template", [
    "wsh(multi(2,{}))", "sh(wsh(sortedmulti(2,{})))", "sh(multi(1,{}))", "sh(sortedmulti(3,{}))",
    f"tr({NUMS},sortedmulti_a(2,{{}}))", f"tr({NUMS},multi_a(1,{{}}))",
])
def test_every_form_the_device_registers(template):
    text = desc(template)
    assert policy.canonical(quotes(text)) == add_checksum(text)


def test_tr_with_a_key_expression_as_internal_key():
    text = f"tr({key(ROOTS[0], path='m/48h/1h/1h/2h')},sortedmulti_a(2,{','.join(key(r) for r in ROOTS)}))"
    ms = policy.parse(policy.canonical(text))
    assert ms.internal.fingerprint == ROOTS[0].my_fingerprint and len(ms.keys) == 3


def test_multi_keeps_the_key_order():
    text = desc("wsh(multi(2,{}))", ROOTS[::-1])
    assert [k.fingerprint for k in policy.parse(text).keys] == [r.my_fingerprint for r in ROOTS[::-1]]


def test_slip132_keys_are_converted():
    zkey = f"[{ROOTS[0].my_fingerprint.hex()}/48h/1h/0h/2h]{xpub(ROOTS[0], version=VPUB)}/<0;1>/*"
    text = "wsh(sortedmulti(2,{}))".format(",".join([zkey] + [key(r) for r in ROOTS[1:]]))
    assert policy.canonical(text) == WSH


@pytest.mark.parametrize("text, words", [
    (WSH[:-1] + ("q" if WSH[-1] != "q" else "p"), "checksum"),
    (desc("wsh(sortedmulti(0,{}))"), "threshold 0 of 3"),
    (desc("wsh(sortedmulti(4,{}))"), "threshold 4 of 3"),
    (desc("wsh(sortedmulti(x,{}))"), "not a number"),
    (desc("wsh(sortedmulti_a(2,{}))"), "expected sortedmulti or multi"),
    (desc("tr(" + NUMS + ",sortedmulti(2,{}))"), "expected sortedmulti_a or multi_a"),
    (desc("wpkh({})", ROOTS[:1]), "unsupported form"),
    (desc("wsh(thresh(2,{}))"), "expected sortedmulti"),
    (desc("tr(sortedmulti_a(2,{}))"), "internal key"),
    ("tr(" + "11" * 32 + "," + desc("sortedmulti_a(2,{})") + ")", "not a point"),
    (desc(tail="/0/*"), "key 1"),
    (desc(tail=""), "<0;1>"),
    (desc(tail="/<0;2>/*"), "<0;1>"),
    (desc(tail="/1h/*"), "hardened"),
    (desc("wsh(sortedmulti(2,{}))", [ROOTS[0], ROOTS[1], ROOTS[0]]), "key 3 (73c5da0a) is the same key as key 1"),
    ("wsh(sortedmulti(1,%s))" % ",".join([key(ROOTS[0])] * 16), "at most 15"),
    ("wsh(sortedmulti(1,%s,%s/<0;1>/*))" % (key(ROOTS[0]), xpub(ROOTS[1])), "key 2"),
    ("wsh(sortedmulti(1,%s,[%s/48h/1h/0h]%s/<0;1>/*))" % (key(ROOTS[0]), ROOTS[1].my_fingerprint.hex(),
                                                          xpub(ROOTS[1])), "does not fit the xpub"),
    ("wsh(sortedmulti(1,%s,[00000000/48h/1h/0h/2h]%s/<0;1>/*))" % (
        key(ROOTS[0]), ROOTS[1].derive(PATH).to_base58()), "private key"),
    ("wsh(sortedmulti(1,%s,[00000000/48h/1h/0h/2h]xpubNOTAKEY/<0;1>/*))" % key(ROOTS[0]), "not a valid"),
    ("wsh(sortedmulti(1,%s,%s))" % (key(ROOTS[0]), key(fc.root_key(network="main"), path="m/48h/0h/0h/2h")),
     "mix networks"),
    ("wsh(sortedmulti(1,%s,[0000/48h]%s/<0;1>/*))" % (key(ROOTS[0]), xpub(ROOTS[1])), "bad key origin"),
])
def test_descriptor_errors_name_the_problem(text, words):
    with pytest.raises(PolicyError, match=re.escape(words)):
        policy.canonical(text)


def test_bip380_key_expressions():
    vectors = json.loads((VECTORS / "bip380_389_390_descriptor_test_vectors.json").read_text())["bips"]["380"]
    for v in vectors["key_expressions_invalid"]:
        with pytest.raises(PolicyError):
            policy.parse_key(v["key_expression"])
    accepted = 0
    for v in vectors["key_expressions_valid"]:
        d, k = v["description"], v["key_expression"]
        # public keys we can use; private, uncompressed and hardened-after-xpub ones are refused
        if "public key" in d.lower() and "Uncompressed" not in d and "hardened derivation" not in d:
            assert policy.parse_key(k).text() == k.replace("'", "h"), v
            accepted += 1
        else:
            with pytest.raises(PolicyError):
                policy.parse_key(k)
    assert accepted == 8


def test_bip383_387_scripts_derived_on_the_host():
    bips = json.loads((VECTORS / "bip380_389_390_descriptor_test_vectors.json").read_text())["bips"]
    checked = 0
    for bip, wrap in (("383", "wsh({})"), ("387", "{}")):
        for v in bips[bip]["valid"]:
            if "xpub" not in v["descriptor"] or "prv" in v["descriptor"]:
                continue
            ms = policy.parse(wrap.format(v["descriptor"]))
            for i, want in enumerate(v["scripts"]):
                expect = script.p2wsh(script.Script(bytes.fromhex(want))) if bip == "383" else \
                    script.Script(bytes.fromhex(want))
                assert ms.script_pubkey(i) == expect, (bip, v["descriptor"], i)
                checked += 1
    assert checked == 6


def test_bip389_invalid_descriptors_are_refused():
    for v in json.loads((VECTORS / "bip380_389_390_descriptor_test_vectors.json").read_text())["bips"]["389"][
            "invalid"]:
        with pytest.raises(PolicyError):
            policy.canonical(v["descriptor"])


@pytest.mark.parametrize("template", [
    "wsh(sortedmulti(2,{}))", "wsh(multi(2,{}))", "sh(wsh(sortedmulti(2,{})))", "sh(multi(2,{}))",
    f"tr({NUMS},sortedmulti_a(2,{{}}))", f"tr({NUMS},multi_a(2,{{}}))",
])
def test_addresses_match_embit_on_the_multipath_descriptor(template):
    text = desc(template)
    ms = policy.parse(text)
    ref = Descriptor.from_string(text)
    for index, change in ((0, False), (7, True), (2**31 - 1, False)):
        want = ref.derive(index, branch_index=int(change)).address(NETWORKS["regtest"])
        assert ms.address("regtest", index, change) == want


def test_address_of_one_index():
    at = policy.parse(desc(tail="/1/9"))
    assert not at.ranged
    assert at.address("regtest") == policy.parse(WSH).address("regtest", 9, True)
    with pytest.raises(PolicyError, match="an index is needed"):
        policy.parse(WSH).address("regtest")


# ---------------------------------------------------------------- BIP388 wallet policies


def bip388():
    return json.loads((VECTORS / "bip388_wallet_policy_test_vectors.json").read_text())


def test_bip388_valid_policies():
    done = 0
    for v in bip388()["valid_policies"]:
        if v["descriptor_template"].startswith("wsh(sortedmulti("):
            got = policy.from_wallet_policy(v["descriptor_template"], v["keys_info"])
            assert got.descriptor.split("#")[0] == v["descriptor"].replace("'", "h")
            done += 1
        else:  # single-sig, miniscript, taproot trees, MuSig2: not forms the device registers
            with pytest.raises(PolicyError):
                policy.from_wallet_policy(v["descriptor_template"], v["keys_info"])
    assert done == 1


def test_bip388_invalid_templates():
    keys = bip388()["valid_policies"][5]["keys_info"]  # three distinct keys with origins
    for v in bip388()["invalid_descriptor_templates"]:
        used = {int(n) for n in re.findall(r"@([0-9]+)", v["descriptor_template"])}
        with pytest.raises(PolicyError):
            policy.from_wallet_policy(v["descriptor_template"], keys[: max(used) + 1])


def test_wallet_policy_on_regtest_with_nums():
    keys = [key(r, "") for r in ROOTS]
    got = policy.from_wallet_policy(f"tr({NUMS},sortedmulti_a(2,@0/**,@1/**,@2/<0;1>/*))", keys, "Vault")
    assert got == policy.Policy("Vault", add_checksum(desc(f"tr({NUMS},sortedmulti_a(2,{{}}))")))


@pytest.mark.parametrize("template, keys, words", [
    ("wsh(sortedmulti(2,@0/**,@1/**))", 3, "uses 2 keys but 3"),
    ("wsh(sortedmulti(2,@0/**,@1/**,@2/**))", 2, "uses 3 keys but 2"),
    ("wsh(sortedmulti(2,@0/**,@2/**,@1/**))", 3, "@2 appears before @1"),
    ("wsh(sortedmulti(1,@0/**,@0/**))", 1, "appears twice"),
    ("wsh(sortedmulti(1,@0))", 1, "no /** or /<0;1>/*"),
    ("tr(@0,sortedmulti_a(1,@1/**))", 2, "no /** or /<0;1>/*"),
])
def test_wallet_policy_errors(template, keys, words):
    with pytest.raises(PolicyError, match=re.escape(words)):
        policy.from_wallet_policy(template, [key(r, "") for r in ROOTS[:keys]])


def test_wallet_policy_keys_have_no_derivation():
    with pytest.raises(PolicyError, match=re.escape("keys[1]: no derivation steps")):
        policy.from_wallet_policy("wsh(sortedmulti(2,@0/**,@1/**))", [key(ROOTS[0], ""), key(ROOTS[1], "/0")])


# ---------------------------------------------------------------- Coldcard / Sparrow files


def coldcard(fmt="P2WSH", versions=(VPUB, VPUB, VPUB), m=2, extra=""):
    lines = ["# Coldcard Multisig setup file (created on 73C5DA0A)", "#", "Name: Treasury", f"Policy: {m} of 3",
             "Derivation: m/48'/1'/0'/2'", f"Format: {fmt}", ""]
    lines += [f"{r.my_fingerprint.hex().upper()}: {xpub(r, version=v)}" for r, v in zip(ROOTS, versions)]
    return "\n".join(lines) + extra + "\n"


@pytest.mark.parametrize("fmt, template", [
    ("P2WSH", "wsh(sortedmulti(2,{}))"), ("p2sh-p2wsh", "sh(wsh(sortedmulti(2,{})))"),
    ("P2WSH-P2SH", "sh(wsh(sortedmulti(2,{})))"), ("P2SH", "sh(sortedmulti(2,{}))"),
])
def test_coldcard_file(fmt, template):
    got = policy.from_multisig_file(coldcard(fmt, versions=(VPUB, UPUB, TPUB)))
    assert got == policy.Policy("Treasury", add_checksum(desc(template)))


def test_sparrow_file_with_a_derivation_per_key():
    paths = ["m/48h/1h/0h/2h", "m/48h/1h/5h/2h", "m/48h/1h/0h/2h"]
    lines = ["Name: Sparrow 2of3", "Policy: 2 of 3", "Format: P2WSH", ""]
    for n, (r, p) in enumerate(zip(ROOTS, paths)):
        deriv = f"Derivation: {quotes(p)}" if n != 1 else f"# derivation: {quotes(p)}"
        lines += [f"# Keystore {n + 1}", deriv, f"{r.my_fingerprint.hex().upper()}: {xpub(r, p, VPUB)}", ""]
    got = policy.from_multisig_file("\n".join(lines))
    assert [k.path for k in policy.parse(got.descriptor).keys] == paths
    assert got.name == "Sparrow 2of3"


def test_coldcard_file_of_master_keys():
    lines = ["Name: Masters", "Policy: 1 of 2", "Format: P2WSH", "Derivation: m"]
    lines += [f"{r.my_fingerprint.hex().upper()}: {r.to_public().to_base58()}" for r in ROOTS[:2]]
    keys = [f"[{r.my_fingerprint.hex()}]{r.to_public().to_base58()}/<0;1>/*" for r in ROOTS[:2]]
    assert policy.from_multisig_file("\n".join(lines)).descriptor == add_checksum(f"wsh(sortedmulti(1,{','.join(keys)}))")


@pytest.mark.parametrize("text, words", [
    (coldcard().replace("Format: P2WSH\n", ""), "no Format: line"),
    (coldcard().replace("Policy: 2 of 3\n", ""), "no Policy: line"),
    (coldcard().replace("Policy: 2 of 3", "Policy: 2 of 4"), "line 4: policy says 4 keys but the file has 3"),
    (coldcard().replace("Policy: 2 of 3", "Policy: two of three"), "line 4: policy 'two of three'"),
    (coldcard(m=5), "threshold 5 of 3"),
    (coldcard("P2TR"), "line 6: format 'P2TR'"),
    (coldcard().replace("Derivation: m/48'/1'/0'/2'\n", ""), "line 7: key 73C5DA0A comes before any Derivation"),
    (coldcard().replace("Derivation: m/48'/1'/0'/2'", "Derivation: m/48'/1'/0'"), "line 8: key 1 (73c5da0a): origin"),
    (coldcard().replace("Derivation: m/48'/1'/0'/2'", "Derivation: 48'/1'"), "line 5: path must start with m/"),
    (coldcard(extra="\nB8688DF1: " + xpub(ROOTS[1], version=VPUB)).replace("2 of 3", "2 of 4"), "line 11: key 4"),
    (coldcard() + "Label: x\n", "unknown line"),
    (coldcard() + "just some words\n", "expected 'Label: value'"),
    (coldcard().replace(": Vpub", ": Xpub", 1), "line 8 (73C5DA0A): not a valid extended public key"),
    (coldcard() .replace(xpub(ROOTS[0], version=VPUB), ROOTS[0].derive(PATH).to_base58()),
     "line 8 (73C5DA0A): a private key"),
])
def test_coldcard_file_errors_name_the_line(text, words):
    with pytest.raises(PolicyError, match=re.escape(words)):
        policy.from_multisig_file(text)


# ---------------------------------------------------------------- load(): any of the three


def test_load_dispatches_on_the_content():
    keys = [key(r, "") for r in ROOTS]
    as_json = json.dumps({"name": "Vault", "template": "wsh(sortedmulti(2,@0/**,@1/**,@2/**))", "keys": keys})
    assert policy.load(as_json) == policy.Policy("Vault", WSH)
    assert policy.load(coldcard()) == policy.Policy("Treasury", WSH)
    assert policy.load("# the treasury\n" + quotes(WSH.split("#")[0]) + "\n") == policy.Policy(None, WSH)
    assert policy.load(coldcard(), name="Ops").name == "Ops"


@pytest.mark.parametrize("text, name, words", [
    (WSH + "\n" + WSH, None, "one descriptor"),
    ("{not json", None, "not valid JSON"),
    ("[1, 2]", None, "a wallet policy file is"),
    (json.dumps({"template": "wsh(sortedmulti(1,@0/**))"}), None, "template text and a list"),
    (WSH, "a name longer than sixteen", "1 to 16 printable"),
    (WSH, "tab\there", "1 to 16 printable"),
    (coldcard().replace("Treasury", "Treasury of the Realm"), None, "1 to 16 printable"),
])
def test_load_errors(text, name, words):
    with pytest.raises(PolicyError, match=re.escape(words)):
        policy.load(text, name)


# ---------------------------------------------------------------- `amanat wallet` and `amanat limits`


@pytest.fixture
def device(monkeypatch):
    return fc.install(monkeypatch, fc.FakeDevice(PORT))[PORT]


def amanat(*argv, code=0):
    """stdout of a successful command; stdout and stderr of a failed one."""
    result = CliRunner().invoke(cli.main, list(argv))
    assert result.exit_code == code, (result.output, result.exception)
    return result.stdout if code == 0 else result.output


def test_register_from_each_kind_of_file(device, tmp_path):
    (tmp_path / "cc.txt").write_text(coldcard())
    out = json.loads(amanat("wallet", "register", str(tmp_path / "cc.txt"), "--json"))
    assert out["name"] == "Treasury" and out["descriptor"] == WSH and len(bytes.fromhex(out["registration"])) == 32
    (tmp_path / "p.json").write_text(json.dumps({"name": "Vault", "template": f"tr({NUMS},multi_a(2,@0/**,@1/**,@2/**))",
                                                 "keys": [key(r, "") for r in ROOTS]}))
    amanat("wallet", "register", str(tmp_path / "p.json"))
    amanat("wallet", "register", quotes(WSH.split("#")[0]), "--name", "Inline")
    assert set(device.wallets) == {"Treasury", "Vault", "Inline"}
    assert device.wallets["Vault"] == add_checksum(desc(f"tr({NUMS},multi_a(2,{{}}))"))


def test_register_errors(device, tmp_path):
    assert "give --name" in amanat("wallet", "register", WSH, code=2)
    (tmp_path / "cc.txt").write_text(coldcard().replace("Policy: 2 of 3", "Policy: 2 of 4"))
    assert "line 4" in amanat("wallet", "register", str(tmp_path / "cc.txt"), code=8)
    # a mistyped file name is a missing file, not a descriptor that does not parse
    assert "cannot read" in amanat("wallet", "register", str(tmp_path / "cc.txtt"), code=8)
    assert "no such file" in amanat("wallet", "register", "reserve.json", code=8)
    others = add_checksum(desc(roots=ROOTS[1:]))
    assert "no key of this device" in amanat("wallet", "register", others, "--name", "X", code=5)
    device.reject = True
    assert "REJECTED" in amanat("wallet", "register", WSH, "--name", "X", code=4)
    assert device.wallets == {}


def test_register_refuses_a_device_that_stores_something_else(device, monkeypatch):
    real = fc.FakeClient.register_wallet

    def swapped(self, name, descriptor, status=None):
        res = real(self, name, descriptor)
        return dict(res, descriptor=add_checksum(desc(roots=ROOTS[:2])))

    monkeypatch.setattr(fc.FakeClient, "register_wallet", swapped)
    assert "not the wallet sent" in amanat("wallet", "register", WSH, "--name", "X", code=1)


def test_list_show_address_delete(device):
    amanat("wallet", "register", WSH, "--name", "Treasury")
    assert json.loads(amanat("wallet", "list", "--json")) == [{"name": "Treasury", "descriptor": WSH}]
    assert "2 of 3, wsh sortedmulti" in amanat("wallet", "list")
    shown = json.loads(amanat("wallet", "show", "Treasury", "--json"))
    assert [k["ours"] for k in shown["keys"]] == [True, False, False]
    assert shown["keys"][1] == {"fingerprint": ROOTS[1].my_fingerprint.hex(), "path": PATH,
                                "xpub": xpub(ROOTS[1]), "ours": False}
    table = amanat("wallet", "show", "Treasury")
    assert "73c5da0a" in table and "m/48h/1h/0h/2h" in table and "yes" in table and xpub(ROOTS[0])[:12] in table
    want = Descriptor.from_string(WSH.split("#")[0]).derive(4, branch_index=1).address(NETWORKS["regtest"])
    assert amanat("wallet", "address", "Treasury", "4", "--change").strip() == want
    assert ("wallet_address", "Treasury", 4, True) in device.calls
    assert "deleted Treasury" in amanat("wallet", "delete", "Treasury")
    assert device.wallets == {}
    assert "no wallet named Treasury" in amanat("wallet", "show", "Treasury", code=5)


def test_address_the_host_does_not_derive_is_refused(device, monkeypatch):
    amanat("wallet", "register", WSH, "--name", "Treasury")
    monkeypatch.setattr(fc.FakeClient, "wallet_address", lambda self, *a, **k: "bcrt1qwrongaddress")
    assert "but address 0 of Treasury is bcrt1q" in amanat("wallet", "address", "Treasury", "0", code=1)


def test_limits(device):
    assert "10.0 % of the amount sent, and at most 1,000,000 sat" in amanat("limits")
    assert json.loads(amanat("limits", "--set-percent", "2.5", "--json")) == {
        "fee_percent_tenths": 25, "fee_max_sat": 1_000_000}
    amanat("limits", "--set-max-sat", "50000")
    assert device.limits == {"fee_percent_tenths": 25, "fee_max_sat": 50_000}
    assert "steps of 0.1" in amanat("limits", "--set-percent", "0.25", code=2)
    device.reject = True
    amanat("limits", "--set-percent", "1", code=4)
    assert device.limits["fee_percent_tenths"] == 25


# ---------------------------------------------------------------- keys pasted into templates, fingerprints, files


@pytest.mark.parametrize("text, words", [
    (key(ROOTS[1], "/**," + key(ROOTS[2], "")), "keys[1]: "),  # would add a third key
    (key(ROOTS[1], "))#"), "keys[1]: "),
    (" " + key(ROOTS[1], ""), "keys[1]: "),
    (key(ROOTS[1], "/**"), "keys[1]: "),
    (key(ROOTS[1], "/<0;1>/*"), "keys[1]: "),
    (xpub(ROOTS[1]), "keys[1]: "),  # no origin
    ("02" + "11" * 32, "keys[1]: "),
])
def test_wallet_policy_keys_are_one_key_each(text, words):
    with pytest.raises(PolicyError, match=re.escape(words)):
        policy.from_wallet_policy("wsh(sortedmulti(2,@0/**,@1/**))", [key(ROOTS[0], ""), text])


def test_wallet_policy_keys_are_pasted_canonical():
    keys = [quotes(key(r, "")).replace(r.my_fingerprint.hex(), r.my_fingerprint.hex().upper()) for r in ROOTS]
    keys[0] = keys[0].replace(xpub(ROOTS[0]), xpub(ROOTS[0], version=VPUB))
    got = policy.from_wallet_policy("wsh(sortedmulti(2,@0/**,@1/**,@2/**))", keys)
    assert got.descriptor == WSH


def test_wallet_policy_placeholders_have_no_leading_zeros():
    with pytest.raises(PolicyError, match=re.escape("@01 in the template: placeholders have no leading zeros")):
        policy.from_wallet_policy("wsh(sortedmulti(1,@0/**,@01/**))", [key(r, "") for r in ROOTS[:2]])


def test_the_same_key_under_another_parent_fingerprint_is_a_duplicate():
    hd = ROOTS[1].derive(PATH).to_public()
    other = type(hd)(hd.key, hd.chain_code, version=hd.version, depth=hd.depth, fingerprint=b"\x01\x02\x03\x04",
                     child_number=hd.child_number)
    text = "wsh(sortedmulti(2,%s,%s,[deadbeef/48h/1h/0h/2h]%s/<0;1>/*))" % (key(ROOTS[0]), key(ROOTS[1]),
                                                                            other.to_base58())
    with pytest.raises(PolicyError, match=re.escape("key 3 (deadbeef) is the same key as key 2")):
        policy.canonical(text)


def test_origin_fingerprints_are_checked_where_the_xpub_shows_them():
    master = ROOTS[1].to_public().to_base58()
    level1 = ROOTS[1].derive("m/1h").to_public().to_base58()
    fp = ROOTS[1].my_fingerprint.hex()
    assert policy.canonical(f"wsh(sortedmulti(1,{key(ROOTS[0])},[{fp}]{master}/<0;1>/*))")
    assert policy.canonical(f"wsh(sortedmulti(1,{key(ROOTS[0])},[{fp}/1h]{level1}/<0;1>/*))")
    with pytest.raises(PolicyError, match=re.escape(f"key 2 (deadbeef): the xpub is a master key of fingerprint {fp}")):
        policy.canonical(f"wsh(sortedmulti(1,{key(ROOTS[0])},[deadbeef]{master}/<0;1>/*))")
    with pytest.raises(PolicyError, match=re.escape(f"key 2 (deadbeef): the xpub's parent fingerprint is {fp}")):
        policy.canonical(f"wsh(sortedmulti(1,{key(ROOTS[0])},[deadbeef/1h]{level1}/<0;1>/*))")
    # in a file, the error names the line
    lines = ["Name: v", "Policy: 1 of 2", "Format: P2WSH", "Derivation: m/48'/1'/0'/2'",
             f"{ROOTS[0].my_fingerprint.hex()}: {xpub(ROOTS[0])}", "Derivation: m/1'", f"DEADBEEF: {level1}"]
    with pytest.raises(PolicyError, match=re.escape("line 7: key 2 (deadbeef): the xpub's parent fingerprint")):
        policy.from_multisig_file("\n".join(lines))


@pytest.mark.parametrize("line, words", [
    ("Name: Other", "line 7: a second Name: line (the first is on line 3)"),
    ("Policy: 1 of 3", "line 7: a second Policy: line (the first is on line 4)"),
    ("Format: P2SH", "line 7: a second Format: line (the first is on line 6)"),
])
def test_coldcard_file_headers_come_once(line, words):
    with pytest.raises(PolicyError, match=re.escape(words)):
        policy.from_multisig_file(coldcard().replace("Format: P2WSH\n", f"Format: P2WSH\n{line}\n"))


@pytest.mark.parametrize("content, words", [
    (json.dumps({"name": 5, "template": "wsh(sortedmulti(1,@0/**))", "keys": [key(ROOTS[0], "")]}).encode(),
     "wallet name 5"),
    (b"\xff\xfe\x00", "not a text file (UTF-8)"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_register_bad_files_are_one_line_errors(device, tmp_path, content, words):
    (tmp_path / "w.json").write_bytes(content)
    result = CliRunner().invoke(cli.main, ["wallet", "register", str(tmp_path / "w.json")])
    assert result.exit_code == 8 and isinstance(result.exception, SystemExit), result.exception
    assert words in result.output and "Traceback" not in result.output
    assert device.wallets == {}

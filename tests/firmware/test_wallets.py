"""Registered multisig wallets (firmware/signer/wallets.py): parsing, scripts, policy, registry.

Scripts are checked three ways: the script builders against the BIP 383/387
descriptor vectors; whole wallets (every form, both chains) against an
independent host computation (coincurve for the curve, hashlib for hashes);
and libbitcoinkernel accepting a spend signed with the derived scripts.
The module runs on CPython for the fast and property tests, then under the
real MicroPython VM (one process per test) for the same results.
"""

import hashlib
import hmac
import json
import os
import re

import coincurve
import pytest
from embit import base58, bip32, bip39, script
from embit.networks import NETWORKS
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amanat import kernel, mpy
from conftest import VECTORS, firmware_on_cpython

firmware_on_cpython()

from signer import desc_checksum, wallets  # noqa: E402
from signer.errors import BadParams, StorageError  # noqa: E402
from signer.keystore import Keystore  # noqa: E402

H = 0x80000000
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NETWORK = "test"
NET = NETWORKS[NETWORK]
MNEMONIC = "all all all all all all all all all all all all"
KS = Keystore(NETWORK)
KS.load_mnemonic(MNEMONIC)
# Cosigners' roots: ours first, then other devices.
ROOTS = [KS.root] + [bip32.HDKey.from_seed(bytes([i]) * 64, version=NET["xprv"]) for i in range(1, 16)]
ORIGIN = "m/48h/1h/0h/2h"
NUMS_HEX = wallets.NUMS.hex()
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def key(root, origin=ORIGIN, suffix="/<0;1>/*", xpub=None, fp=None):
    """Key expression of `root` at `origin` (h notation)."""
    xpub = xpub or root.derive(origin).to_public().to_base58()
    steps = origin[1:]  # "/48h/..."
    return "[%s%s]%s%s" % ((fp or root.my_fingerprint).hex(), steps, xpub, suffix)


def keys(n, start=0):
    return ",".join(key(r) for r in ROOTS[start : start + n])


FORMS = {
    "wsh": "wsh(sortedmulti(2,{k}))",
    "wsh-multi": "wsh(multi(2,{k}))",
    "sh-wsh": "sh(wsh(sortedmulti(2,{k})))",
    "sh-wsh-multi": "sh(wsh(multi(2,{k})))",
    "sh": "sh(sortedmulti(2,{k}))",
    "sh-multi": "sh(multi(2,{k}))",
    "tr-nums": "tr(" + NUMS_HEX + ",sortedmulti_a(2,{k}))",
    "tr-nums-multi": "tr(" + NUMS_HEX + ",multi_a(2,{k}))",
    "tr-key": "tr(" + key(ROOTS[5], "m/48h/1h/0h/3h") + ",sortedmulti_a(2,{k}))",
}


def form(name, n=3, start=0):
    return FORMS[name].format(k=keys(n, start))


def parse(text, name="Treasury"):
    return wallets.parse_wallet(name, text, NET)


def refused(text, keystore=KS):
    with pytest.raises(BadParams) as e:
        wallets.check_policy(parse(text), keystore)
    return e.value.message


# --- an independent computation: coincurve + hashlib, no embit


def b58_xkey(text):
    raw = base58.decode_check(text)  # base58 itself is not under test
    return raw[13:45], raw[45:78]  # chain code, key data


def ckd(chain, keydata, i):
    """BIP32 child (private when keydata starts with 0x00)."""
    private = keydata[0] == 0
    if i >= H:
        data = keydata + i.to_bytes(4, "big")
    else:
        pub = coincurve.PrivateKey(keydata[1:]).public_key.format() if private else keydata
        data = pub + i.to_bytes(4, "big")
    digest = hmac.new(chain, data, hashlib.sha512).digest()
    if private:
        k = (int.from_bytes(digest[:32], "big") + int.from_bytes(keydata[1:], "big")) % N
        return digest[32:], b"\x00" + k.to_bytes(32, "big")
    return digest[32:], coincurve.PublicKey(keydata).add(digest[:32]).format()


def ref_pub(xkey, steps):
    chain, kd = b58_xkey(xkey)
    for i in steps:
        chain, kd = ckd(chain, kd, i)
    return coincurve.PrivateKey(kd[1:]).public_key.format() if kd[0] == 0 else kd


def tagged(tag, data):
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()


def hash160(b):
    return hashlib.new("ripemd160", hashlib.sha256(b).digest()).digest()


def ref_multisig(k, secs):
    return bytes([0x50 + k]) + b"".join(b"\x21" + s for s in secs) + bytes([0x50 + len(secs), 0xAE])


def ref_multi_a(k, xs):
    body = b"".join(b"\x20" + x + (b"\xba" if i else b"\xac") for i, x in enumerate(xs))
    return body + bytes([0x50 + k, 0x9C])


def ref_taproot(internal_x, leaf):
    lh = tagged("TapLeaf", b"\xc0" + bytes([len(leaf)]) + leaf if len(leaf) < 253 else b"\xc0\xfd" + len(leaf).to_bytes(2, "little") + leaf)
    out = coincurve.PublicKeyXOnly(internal_x)
    out.tweak_add(tagged("TapTweak", internal_x + lh))
    return b"\x51\x20" + out.format(), bytes([0xC0 | out.parity]) + internal_x


XPUB_RE = re.compile(r"\[([0-9a-f]{8})([^\]]*)\]([a-zA-Z0-9]+)/<0;1>/\*")


def ref_wallet(text, change, index):
    """(scriptPubKey, witness or redeem script, control block) from the canonical text."""
    keys_ = XPUB_RE.findall(text)
    k = int(re.search(r"multi(?:_a)?\((\d+),", text).group(1))
    srt = "sortedmulti" in text
    if text.startswith("tr("):
        internal = text[3:].split(",")[0]
        if len(internal) == 64:
            ix = bytes.fromhex(internal)
        else:
            ix = ref_pub(keys_[0][2], [change, index])[1:]
            keys_ = keys_[1:]
        xs = [ref_pub(x, [change, index])[1:] for _, _, x in keys_]
        leaf = ref_multi_a(k, sorted(xs) if srt else xs)
        spk, cb = ref_taproot(ix, leaf)
        return spk, leaf, cb
    secs = [ref_pub(x, [change, index]) for _, _, x in keys_]
    ms = ref_multisig(k, sorted(secs) if srt else secs)
    if text.startswith("wsh("):
        return b"\x00\x20" + hashlib.sha256(ms).digest(), ms, None
    if text.startswith("sh(wsh("):
        redeem = b"\x00\x20" + hashlib.sha256(ms).digest()
        return b"\xa9\x14" + hash160(redeem) + b"\x87", ms, None
    return b"\xa9\x14" + hash160(ms) + b"\x87", ms, None


# --- checksum (BIP380)


def load(name):
    with open(VECTORS / name) as f:
        return json.load(f)


DESC_VECTORS = load("bip380_389_390_descriptor_test_vectors.json")["bips"]
POLICY_VECTORS = load("bip388_wallet_policy_test_vectors.json")


@pytest.mark.parametrize("case", DESC_VECTORS["380"]["checksum_tests"], ids=lambda c: c["description"])
def test_checksum_vectors(case):
    if case["expected_valid"]:
        assert desc_checksum.strip_checksum(case["descriptor"]) == case["descriptor"].split("#")[0]
    else:
        with pytest.raises(BadParams):
            desc_checksum.strip_checksum(case["descriptor"])


@SETTINGS
@given(st.text(alphabet=desc_checksum.CHARSET, max_size=300))
def test_checksum_matches_embit(text):
    from embit.descriptor.checksum import checksum

    assert desc_checksum.checksum(text) == checksum(text)


# --- script builders against the BIP 383/387 vectors


def vector_key(expr, index, xonly):
    """Public key of a vector's key expression (hex, WIF, xpub/xprv with a path)."""
    expr = re.sub(r"^\[[^\]]*\]", "", expr)
    base, *steps = expr.split("/")
    if len(base) in (64, 66) and all(c in "0123456789abcdef" for c in base):
        pub = bytes.fromhex(base)
        pub = pub if len(pub) == 33 else b"\x02" + pub
    elif base[1:4] in ("pub", "prv"):
        path = []
        for s in steps:
            hard = s[-1:] in ("h", "'")
            s = s[:-1] if hard else s
            path.append((index if s == "*" else int(s)) + (H if hard else 0))
        pub = ref_pub(base, path)
    else:
        raw = base58.decode_check(base)
        assert len(raw) == 34, "uncompressed WIF is not used by these forms"
        pub = coincurve.PrivateKey(raw[1:33]).public_key.format()
    return pub[1:] if xonly else pub


def vector_script(desc, index):
    """scriptPubKey of a BIP383/387 vector built with the firmware's builders."""
    m = re.fullmatch(r"(sh\(wsh\(|wsh\(|sh\(|tr\(([^,]+),|)(sorted)?(multi(?:_a)?)\((\d+),(.*?)\)+", desc)
    outer, internal, srt, func, k, args = m.groups()
    tr = func == "multi_a"
    ks = [vector_key(a, index, tr) for a in args.split(",")]
    if srt:
        ks.sort()
    if tr:
        leaf = wallets.multi_a_script(int(k), ks)
        q, _ = wallets.taproot_output(vector_key(internal, index, True), wallets.leaf_hash(leaf))
        return b"\x51\x20" + q
    ms = wallets.multisig_script(int(k), ks)
    if outer == "":
        return ms
    if outer == "sh(":
        return b"\xa9\x14" + hash160(ms) + b"\x87"
    wsh = b"\x00\x20" + hashlib.sha256(ms).digest()
    return wsh if outer == "wsh(" else b"\xa9\x14" + hash160(wsh) + b"\x87"


def usable(desc):
    # the device's forms: compressed keys, at most 15 of them
    return (
        "multi" in desc
        and "04a34b" not in desc
        and "5KYZ" not in desc
        and len(re.search(r"multi(?:_a)?\(\d+,(.*)", desc).group(1).split(",")) <= wallets.MAX_KEYS
    )


SCRIPT_VECTORS = [v for b in ("383", "387") for v in DESC_VECTORS[b]["valid"] if usable(v["descriptor"])]


def test_script_vectors_cover_every_builder():
    descs = [v["descriptor"] for v in SCRIPT_VECTORS]
    assert len(descs) == 9
    for part in ("sh(multi(", "wsh(multi(", "sortedmulti(", "tr(", ",multi_a(", "sortedmulti_a("):
        assert any(part in d for d in descs), part


@pytest.mark.parametrize("vector", SCRIPT_VECTORS, ids=lambda v: v["descriptor"][:40])
def test_script_builders_match_descriptor_vectors(vector):
    for i, want in enumerate(vector["scripts"]):
        assert vector_script(vector["descriptor"], i).hex() == want


def test_bip341_script_path_vectors():
    """taproot_output and leaf_hash against BIP341's single-leaf cases (control blocks too)."""
    cases = load("bip341_wallet_test_vectors.json")["scriptPubKey"]
    checked = 0
    for c in cases:
        tree = c["given"]["scriptTree"]
        if not isinstance(tree, dict) or tree["leafVersion"] != 0xC0:
            continue
        internal = bytes.fromhex(c["given"]["internalPubkey"])
        lh = wallets.leaf_hash(bytes.fromhex(tree["script"]))
        assert lh.hex() == c["intermediary"]["leafHashes"][0]
        q, parity = wallets.taproot_output(internal, lh)
        assert q.hex() == c["intermediary"]["tweakedPubkey"]
        assert (bytes([0xC0 | parity]) + internal).hex() == c["expected"]["scriptPathControlBlocks"][0]
        checked += 1
    assert checked == 2


# --- parsing and the canonical text


@pytest.mark.parametrize("name", FORMS)
def test_every_form_parses_and_round_trips(name):
    text = form(name)
    w = parse(text)
    assert w.kind == ("tr" if name.startswith("tr") else name.replace("-multi", ""))
    assert w.threshold == 2 and len(w.cosigners) == 3
    assert w.sorted == ("sorted" in text)
    body, cs = w.descriptor.split("#")
    assert body == text and cs == desc_checksum.checksum(text)
    again = parse(w.descriptor)
    assert again.descriptor == w.descriptor
    assert [c.text() for c in again.cosigners] == [c.text() for c in w.cosigners]
    c = w.cosigners[1]
    assert c.fingerprint == ROOTS[1].my_fingerprint and c.path() == ORIGIN
    assert c.origin == [48 + H, 1 + H, H, 2 + H] and not c.ours
    if name == "tr-key":
        assert isinstance(w.internal, wallets.Cosigner)
    elif name.startswith("tr"):
        assert w.internal == wallets.NUMS
    else:
        assert w.internal is None


def test_input_variants_give_the_canonical_text():
    canonical = parse(form("wsh")).descriptor
    variants = [
        form("wsh").replace("/<0;1>/*", "/**"),
        form("wsh").replace("h/", "'/").replace("h]", "']"),
        form("wsh").replace(ROOTS[1].my_fingerprint.hex(), ROOTS[1].my_fingerprint.hex().upper()),
        canonical,
    ]
    for v in variants:
        assert parse(v).descriptor == canonical


def test_bip388_policy_vectors():
    """/** expands to /<0;1>/* and ' to h: the BIP388 multisig policy."""
    [v] = [p for p in POLICY_VECTORS["valid_policies"] if p["description"] == "BIP-48 P2WSH multisig"]
    expanded = v["descriptor_template"]
    for i, k in enumerate(v["keys_info"]):
        expanded = expanded.replace("@%d" % i, k)
    main = NETWORKS["main"]
    w = wallets.parse_wallet("bip48", expanded, main)
    assert w.descriptor.split("#")[0] == v["descriptor"].replace("'", "h")
    assert wallets.parse_wallet("bip48", v["descriptor"], main).descriptor == w.descriptor


def test_bip388_invalid_templates_are_refused():
    keys_info = [p for p in POLICY_VECTORS["valid_policies"] if p["description"].startswith("Miniscript: A single")][0]["keys_info"]
    # about placeholder numbering in templates, which plain descriptors do not have
    not_applicable = ("Key placeholders out of order", "Skipped key placeholder @1")
    checked = 0
    for case in POLICY_VECTORS["invalid_descriptor_templates"]:
        if case["reason"] in not_applicable:
            continue
        text = case["descriptor_template"]
        for i, k in enumerate(keys_info):
            text = text.replace("@%d" % i, k)
        with pytest.raises(BadParams):
            wallets.parse_wallet("x", text, NETWORKS["main"])
        checked += 1
    assert checked == 7


def test_bip380_key_expressions():
    exprs = DESC_VECTORS["380"]
    for case in exprs["key_expressions_invalid"]:
        with pytest.raises(BadParams):
            wallets.parse_wallet("x", "wsh(sortedmulti(1,%s/<0;1>/*))" % case["key_expression"], NETWORKS["main"])
    ok = 0
    for case in exprs["key_expressions_valid"]:
        e = case["key_expression"]
        if e.startswith("[") and "xpub" in e and "/" not in e.split("]")[1]:
            w = wallets.parse_wallet("x", "wsh(sortedmulti(1,%s/<0;1>/*))" % e, NETWORKS["main"])
            assert w.cosigners[0].text() == e.replace("'", "h") + "/<0;1>/*"
            ok += 1
    assert ok == 1


PARSE_REFUSALS = [
    ("wpkh(" + key(ROOTS[0]) + ")", "unsupported descriptor form"),
    ("sortedmulti(2,{k})", "unsupported descriptor form"),
    ("wsh(sortedmulti_a(2,{k}))", "unsupported descriptor form"),
    ("sh(multi_a(2,{k}))", "unsupported descriptor form"),
    ("tr(" + NUMS_HEX + ",sortedmulti(2,{k}))", "unsupported descriptor form"),
    ("tr(" + NUMS_HEX + ",{{sortedmulti_a(2,{k}),pk(" + NUMS_HEX + ")}})", "unsupported descriptor form"),
    ("tr(" + NUMS_HEX + ")", "tr() needs a multi_a or sortedmulti_a leaf"),
    ("tr(sortedmulti_a(2,{k}))", "unsupported descriptor form"),
    ("wsh(sortedmulti(2,{k})) ", "unsupported descriptor form"),
    ("wsh(sortedmulti(2,{k}))#", "descriptor checksum is wrong"),
    ("wsh(sortedmulti(2,{k}))#qqqqqqqq", "descriptor checksum is wrong"),
    ("wsh(sortedmulti(02,{k}))", "threshold must be a number"),
    ("wsh(sortedmulti(a,{k}))", "threshold must be a number"),
    ("wsh(sortedmulti(-1,{k}))", "threshold must be a number"),
    ("wsh(sortedmulti(0,{k}))", "threshold must be at least 1"),
    ("wsh(sortedmulti(4,{k}))", "threshold 4 is above the number of keys (3)"),
    ("tr(" + NUMS_HEX + ",multi_a(0,{k}))", "threshold must be at least 1"),
    ("wsh(sortedmulti(2,{k},{k16}))", "more than 15 keys (16)"),
    ("tr(" + "00" * 32 + ",multi_a(1,{k}))", "internal key is not a valid x-only public key"),
    ("tr(" + "02" + NUMS_HEX + ",multi_a(1,{k}))", "internal key: key origin [fingerprint/path] is missing"),
    ("wsh(sortedmulti(1,{k},{mine}))", "cosigner 4 (fingerprint 5c9e228d): duplicate key (same as cosigner 1)"),
    ("tr(" + key(ROOTS[1]) + ",multi_a(1,{k}))", "internal key (fingerprint {fp1}): duplicate key (same as cosigner 2)"),
]


def _fill(t):
    return t.format(
        k=keys(3),
        k16=keys(13, 3),
        mine=key(ROOTS[0], suffix="/**"),
        fp1=ROOTS[1].my_fingerprint.hex(),
    )


@pytest.mark.parametrize("text,message", PARSE_REFUSALS, ids=[m for _, m in PARSE_REFUSALS])
def test_parse_refusals(text, message):
    with pytest.raises(BadParams) as e:
        parse(_fill(text))
    assert e.value.message.startswith(_fill(message)), e.value.message


def _one_key(expr):
    """A 1-of-2 whose second key is `expr` (the first is ours)."""
    return "wsh(sortedmulti(1,%s,%s))" % (key(ROOTS[0]), expr)


FP1 = ROOTS[1].my_fingerprint.hex()
XPUB1 = ROOTS[1].derive(ORIGIN).to_public().to_base58()
WHO = "cosigner 2 (fingerprint %s): " % FP1
KEY_REFUSALS = [
    (XPUB1 + "/<0;1>/*", "cosigner 2: key origin [fingerprint/path] is missing"),
    ("[%s/48h/1h/0h/2h" % FP1 + XPUB1 + "/<0;1>/*", "cosigner 2: key origin is not closed"),
    ("[%s/48h]" % FP1[:7] + XPUB1 + "/<0;1>/*", "cosigner 2: origin fingerprint must be 8 hex digits"),
    ("[%s/48H/1h]" % FP1 + XPUB1 + "/<0;1>/*", WHO + "bad origin path step '48H'"),
    ("[%s/48h/]" % FP1 + XPUB1 + "/<0;1>/*", WHO + "bad origin path step ''"),
    ("[%s/2147483648]" % FP1 + XPUB1 + "/<0;1>/*", WHO + "bad origin path step '2147483648'"),
    ("[%s/48h/*]" % FP1 + XPUB1 + "/<0;1>/*", WHO + "bad origin path step '*'"),
    ("[%s/<0;1>]" % FP1 + XPUB1 + "/<0;1>/*", WHO + "bad origin path step '<0;1>'"),
    ("[%s%s]" % (FP1, "/1" * 15) + XPUB1 + "/<0;1>/*", WHO + "origin path is deeper than 14 steps"),
    (key(ROOTS[1], suffix=""), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/0/*"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/*"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/<1;0>/*"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/<0;0>/*"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/<0;1;2>/*"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/<0;1>/<2;3>"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/{0,1}/*"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/<>/*"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/<0;1>/0/*"), WHO + "derivation after the xpub must be /<0;1>/*"),
    (key(ROOTS[1], suffix="/<0;1>/*h"), WHO + "hardened derivation after the xpub is not allowed"),
    (key(ROOTS[1], suffix="/<0h;1h>/*"), WHO + "hardened derivation after the xpub is not allowed"),
    (key(ROOTS[1], suffix="/0'/*"), WHO + "hardened derivation after the xpub is not allowed"),
    (key(ROOTS[1], xpub=XPUB1[:-1] + ("A" if XPUB1[-1] != "A" else "B")), WHO + "not a valid extended public key"),
    (key(ROOTS[1], xpub=ROOTS[1].derive(ORIGIN).to_base58()), WHO + "is a private key; give the xpub"),
    (key(ROOTS[1], xpub=ROOTS[1].derive(ORIGIN).to_public().to_base58(NET["Zpub"])), WHO + "unsupported key version"),
    (key(ROOTS[1], xpub=ROOTS[1].derive(ORIGIN).to_public().to_base58(NETWORKS["main"]["xpub"])),
     WHO + "key is for another network (xpub on Testnet)"),
]


@pytest.mark.parametrize("expr,message", KEY_REFUSALS, ids=[m for _, m in KEY_REFUSALS])
def test_key_refusals(expr, message):
    with pytest.raises(BadParams) as e:
        parse(_one_key(expr))
    assert e.value.message.startswith(message), e.value.message
    assert "prv" not in e.value.message  # a private key is never echoed


def test_other_network_refused_on_main_too():
    with pytest.raises(BadParams) as e:
        wallets.parse_wallet("x", form("wsh"), NETWORKS["main"])
    assert e.value.message == "cosigner 1 (fingerprint %s): key is for another network (tpub on Mainnet)" % ROOTS[0].my_fingerprint.hex()


@pytest.mark.parametrize("name", ["", "x" * 17, "caf\u00e9", "tab\t", " lead", "trail ", 5, None])
def test_bad_names(name):
    with pytest.raises(BadParams):
        wallets.parse_wallet(name, form("wsh"), NET)


def test_good_names():
    for name in ("a", "x" * 16, "Cold 2-of-3 / #1", "~!@"):
        assert parse(form("wsh"), name).name == name


# --- derive() against the independent computation


@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("change,index", [(0, 0), (1, 7), (0, 2**31 - 1)])
def test_derive_matches_reference(name, change, index):
    w = parse(form(name))
    d = w.derive(change, index)
    spk, script_, cb = ref_wallet(w.descriptor, change, index)
    assert d.script_pubkey.data == spk
    assert d.leaf_version == 0xC0
    if w.kind == "tr":
        assert d.leaf_script.data == script_ and d.control_block == cb
        assert d.leaf_hash == wallets.leaf_hash(script_)
        assert d.witness_script is None and d.redeem_script is None
        ix = cb[1:]
        assert d.internal_key.xonly() == ix
        assert [p.xonly() for p in d.pubkeys] == [script_[1 + 34 * i : 33 + 34 * i] for i in range(3)]
    else:
        assert d.witness_script is None if w.kind == "sh" else d.witness_script.data == script_
        assert d.leaf_script is None and d.control_block is None and d.internal_key is None
        if w.kind == "sh":
            assert d.redeem_script.data == script_
        elif w.kind == "sh-wsh":
            assert d.redeem_script.data == b"\x00\x20" + hashlib.sha256(script_).digest()
        else:
            assert d.redeem_script is None
        assert [p.sec() for p in d.pubkeys] == [script_[2 + 34 * i : 35 + 34 * i] for i in range(3)]
    # order maps each script key back to its cosigner
    for p, i in zip(d.pubkeys, d.order):
        assert p.sec() == w.cosigners[i].pubkey(change, index).sec()
    assert sorted(d.order) == [0, 1, 2]
    assert w.address(change, index) == d.script_pubkey.address(NET)


@SETTINGS
@given(
    st.sampled_from(["wsh", "sh-wsh", "sh", "tr", "tr-key"]),
    st.booleans(),
    st.lists(st.integers(1, 15), min_size=1, max_size=6, unique=True),
    st.integers(1, 6),
    st.integers(0, 1),
    st.integers(0, 2**31 - 1),
)
def test_derive_property(kind, srt, roots, k, change, index):
    k = min(k, len(roots))
    ks = ",".join(key(ROOTS[r]) for r in roots)
    func = ("sorted" if srt else "") + ("multi_a" if kind.startswith("tr") else "multi")
    inner = "%s(%d,%s)" % (func, k, ks)
    text = {
        "wsh": "wsh(%s)",
        "sh-wsh": "sh(wsh(%s))",
        "sh": "sh(%s)",
        "tr": "tr(" + NUMS_HEX + ",%s)",
        "tr-key": "tr(" + key(ROOTS[0], "m/48h/1h/7h/2h") + ",%s)",
    }[kind] % inner
    w = parse(text)
    d = w.derive(change, index)
    spk, script_, cb = ref_wallet(w.descriptor, change, index)
    assert d.script_pubkey.data == spk
    assert (d.leaf_script or d.witness_script or d.redeem_script).data == script_
    assert d.control_block == cb
    assert parse(w.descriptor).descriptor == w.descriptor


def test_derive_arguments():
    w = parse(form("wsh"))
    assert w.derive(True, 3).script_pubkey == w.derive(1, 3).script_pubkey
    for change, index in ((2, 0), (-1, 0), (0, 2**31), (0, -1), ("0", 1), (0, 1.0)):
        with pytest.raises(BadParams):
            w.derive(change, index)


def test_plain_internal_key_does_not_derive():
    w = parse(form("tr-nums"))
    a, b = w.derive(0, 0), w.derive(1, 9)
    assert a.internal_key.xonly() == b.internal_key.xonly() == wallets.NUMS
    assert a.script_pubkey != b.script_pubkey


# --- libbitcoinkernel: a spend signed with the derived scripts is valid


def _push(b):
    if len(b) < 0x4C:
        return bytes([len(b)]) + b
    if len(b) <= 0xFF:
        return b"\x4c" + bytes([len(b)]) + b
    return b"\x4d" + len(b).to_bytes(2, "little") + b


@pytest.mark.parametrize("name", ["wsh", "sh-wsh-multi", "sh", "tr-nums", "tr-key"])
def test_signed_spend_is_valid_for_libbitcoinkernel(name):
    w = parse(form(name))
    change, index, amount = 1, 17, 100000
    d = w.derive(change, index)
    tx = Transaction(
        vin=[TransactionInput(hashlib.sha256(name.encode()).digest(), 1)],
        vout=[TransactionOutput(amount - 1000, script.Script(b"\x00\x14" + bytes(20)))],
    )

    def priv(cosigner):
        root = ROOTS[[r.my_fingerprint for r in ROOTS].index(cosigner)]
        return root.derive(ORIGIN).derive([change, index]).key

    # the first two keys in script order sign; the third does not
    signers = [priv(w.cosigners[i].fingerprint) for i in d.order[:2]]
    if w.kind == "tr":
        h = tx.sighash_taproot(0, [d.script_pubkey], [amount], SIGHASH.DEFAULT, ext_flag=1, script=d.leaf_script)
        sigs = [s.schnorr_sign(h).serialize() for s in signers] + [b""]
        tx.vin[0].witness = script.Witness(list(reversed(sigs)) + [d.leaf_script.data, d.control_block])
    else:
        if w.kind == "sh":
            h = tx.sighash_legacy(0, d.redeem_script)
        else:
            h = tx.sighash_segwit(0, d.witness_script, amount)
        sigs = [s.sign(h).serialize() + b"\x01" for s in signers]
        if w.kind == "sh":
            tx.vin[0].script_sig = script.Script(b"\x00" + b"".join(_push(s) for s in sigs) + _push(d.redeem_script.data))
        else:
            tx.vin[0].witness = script.Witness([b""] + sigs + [d.witness_script.data])
            if w.kind == "sh-wsh":
                tx.vin[0].script_sig = script.Script(_push(d.redeem_script.data))
    kernel.verify_transaction(tx.serialize(), [(d.script_pubkey.data, amount)])
    # and a signature too few is not
    if w.kind != "tr":
        bad = Transaction.parse(tx.serialize())
        if w.kind == "sh":
            bad.vin[0].script_sig = script.Script(b"\x00" + _push(sigs[0]) + _push(d.redeem_script.data))
        else:
            bad.vin[0].witness = script.Witness([b"", sigs[0], d.witness_script.data])
        with pytest.raises(kernel.ScriptCheckError):
            kernel.verify_transaction(bad.serialize(), [(d.script_pubkey.data, amount)])


# --- policy


def test_check_policy_marks_our_keys():
    for name in FORMS:
        w = parse(form(name))
        assert wallets.check_policy(w, KS) == [0]
        assert [c.ours for c in w.cosigners] == [True, False, False]
    w = parse("wsh(sortedmulti(2,%s,%s,%s))" % (key(ROOTS[1]), key(ROOTS[0], "m/48h/1h/5h/2h"), key(ROOTS[0])))
    assert wallets.check_policy(w, KS) == [1, 2]
    # only the internal key is ours: still this device's wallet (key path)
    w = parse("tr(%s,sortedmulti_a(2,%s))" % (key(ROOTS[0]), keys(2, 1)))
    assert wallets.check_policy(w, KS) == [] and w.internal.ours


def test_policy_refusals():
    assert refused(form("wsh", 3, 1)) == "none of the keys is this device's"
    assert refused(form("tr-nums", 3, 1)) == "none of the keys is this device's"
    other = Keystore(NETWORK)
    other.load_mnemonic(bip39.mnemonic_from_bytes(bytes(16)))
    assert refused(form("wsh"), other) == "none of the keys is this device's"
    fp0 = ROOTS[0].my_fingerprint.hex()
    # our fingerprint, someone else's xpub (or ours at another path)
    fake = key(ROOTS[1], fp=ROOTS[0].my_fingerprint)
    assert refused("wsh(sortedmulti(2,%s,%s))" % (key(ROOTS[2]), fake)) == (
        "cosigner 2 (fingerprint %s): fingerprint is this device's but the xpub is not" % fp0
    )
    moved = key(ROOTS[0], "m/48h/1h/0h/2h", xpub=ROOTS[0].derive("m/48h/1h/1h/2h").to_public().to_base58())
    assert refused("wsh(sortedmulti(2,%s,%s))" % (key(ROOTS[2]), moved)).endswith(
        "fingerprint is this device's but the xpub is not"
    )
    # same public key under another chain code
    x = ROOTS[1].derive(ORIGIN).to_public()
    twin = bip32.HDKey(x.key, bytes(32), version=x.version, depth=x.depth, fingerprint=x.fingerprint, child_number=x.child_number)
    twin_expr = key(ROOTS[1], "m/48h/1h/0h/3h", xpub=twin.to_base58())
    with pytest.raises(BadParams) as e:
        parse("wsh(sortedmulti(2,%s,%s,%s))" % (key(ROOTS[0]), key(ROOTS[1]), twin_expr))
    assert e.value.message == "cosigner 3 (fingerprint %s): duplicate key (same as cosigner 2)" % FP1


def test_policy_refuses_equal_derived_keys():
    # not reachable with distinct xpubs; simulated to pin the message
    w = parse(form("wsh"))
    w.cosigners[2].pubkey = w.cosigners[1].pubkey
    with pytest.raises(BadParams, match=r"\(fingerprint [0-9a-f]{8}\): duplicate key \(derives the same key as cosigner [23] "):
        wallets.check_policy(w, KS)


def test_no_seed_loaded():
    from signer.errors import NotReady

    empty = Keystore(NETWORK)
    with pytest.raises(NotReady):
        wallets.check_policy(parse(form("wsh")), empty)
    with pytest.raises(NotReady):
        wallets.registration_key(empty)


def test_policy_rechecks_a_wallet_built_by_hand():
    w = parse(form("wsh"))
    w.threshold = 0
    with pytest.raises(BadParams, match="threshold must be at least 1"):
        wallets.check_policy(w, KS)
    w = parse(form("wsh"))
    w.cosigners = w.cosigners * 6
    with pytest.raises(BadParams, match="more than 15 keys"):
        wallets.check_policy(w, KS)
    main = Keystore("main")
    main.load_mnemonic(MNEMONIC)
    with pytest.raises(BadParams, match=r"key is for another network \(tpub on Mainnet\)"):
        wallets.check_policy(parse(form("wsh")), main)


def test_fifteen_keys_fit_every_form():
    for name in FORMS:
        if name == "tr-key":
            continue
        text = FORMS[name].replace("(2,", "(15,").format(k=keys(15))
        w = parse(text)
        assert wallets.check_policy(w, KS) == [0]
        d = w.derive(0, 1)
        assert d.script_pubkey.data == ref_wallet(w.descriptor, 0, 1)[0]
        if w.kind == "sh":
            assert len(d.redeem_script.data) <= 520  # the P2SH push limit


# --- registration HMAC


def test_registration_key_and_mac():
    k = wallets.registration_key(KS)
    assert isinstance(k, bytearray) and len(k) == 32
    node = KS.root.child(0x414D4E54 + H)
    assert bytes(k) == hmac.new(node.key.secret, b"amanat wallet registration v1", hashlib.sha256).digest()
    other = Keystore(NETWORK)
    other.load_mnemonic(bip39.mnemonic_from_bytes(bytes(16)))
    assert wallets.registration_key(other) != k
    mac = wallets.registration_mac(k, "T", "wsh(x)")
    msg = b"\x00\x00\x00\x01T\x00\x00\x00\x06wsh(x)"
    assert mac == hmac.new(bytes(k), msg, hashlib.sha256).digest()
    # the length prefixes keep name and descriptor apart
    assert wallets.registration_mac(k, "Tw", "sh(x)") != mac


# --- registry (CPython, on the host file system)


def _registry(tmp_path, keystore=KS):
    return wallets.Registry(str(tmp_path) + "/", keystore, NET)


def test_registry_add_get_list_delete(tmp_path):
    reg = _registry(tmp_path)
    assert reg.names() == [] and reg.all() == []
    a, b = parse(form("wsh"), "b vault"), parse(form("tr-nums"), "A/../x")
    mac_a = reg.add(a)
    mac_b = reg.add(b)
    assert mac_a == wallets.registration_mac(wallets.registration_key(KS), a.name, a.descriptor)
    assert reg.names() == ["A/../x", "b vault"]
    assert sorted(os.listdir(tmp_path / "wallets")) == [n.encode().hex() + ".json" for n in reg.names()]
    got = reg.get("b vault")
    assert got.descriptor == a.descriptor and got.name == "b vault"
    assert [c.ours for c in got.cosigners] == [True, False, False]  # without check_policy
    assert [w.name for w in reg.all()] == ["A/../x", "b vault"]
    # idempotent: same answer, nothing rewritten
    assert reg.add(parse(a.descriptor, "b vault")) == mac_a
    assert reg.registered_mac(a) == mac_a
    assert reg.registered_mac(parse(form("sh"), "free")) is None
    # the name holds other keys
    with pytest.raises(BadParams) as e:
        reg.add(parse(form("sh"), "b vault"))
    assert e.value.message == "wallet name b vault is already used for other keys"
    assert reg.get("b vault").descriptor == a.descriptor
    reg.delete("A/../x")
    assert reg.names() == ["b vault"]
    with pytest.raises(BadParams, match="no wallet named A/../x"):
        reg.get("A/../x")
    with pytest.raises(BadParams, match="no wallet named A/../x"):
        reg.delete("A/../x")
    assert reg.add(b) == mac_b  # the same registration again after a delete


def _file(tmp_path, name):
    return tmp_path / "wallets" / (name.encode().hex() + ".json")


@pytest.mark.parametrize("where", ["descriptor", "mac", "name", "json"])
def test_registry_tampered_record(tmp_path, where):
    reg = _registry(tmp_path)
    reg.add(parse(form("wsh"), "vault"))
    reg.add(parse(form("sh"), "other"))
    f = _file(tmp_path, "vault")
    raw = bytearray(f.read_bytes())
    rec = json.loads(raw)
    if where == "descriptor":
        # another (valid) descriptor: the threshold changed from 2 to 1
        rec["descriptor"] = parse(rec["descriptor"].split("#")[0].replace("(2,", "(1,")).descriptor
        raw = json.dumps(rec).encode()
    elif where == "mac":
        i = raw.index(b'"mac": "') + 9
        raw[i] = ord("0") if raw[i] != ord("0") else ord("1")
    elif where == "name":
        rec["name"] = "other"
        raw = json.dumps(rec).encode()
    else:
        raw[0] ^= 0x01
    f.write_bytes(bytes(raw))
    fresh = _registry(tmp_path)  # no cached copy
    for call in (lambda: fresh.get("vault"), fresh.all, lambda: reg.get("vault")):
        with pytest.raises(StorageError) as e:
            call()
        assert e.value.message == ("the wallet vault record is damaged (it does not parse)" if where == "json"
                                   else "wallet vault: record fails its integrity check")
    assert fresh.get("other").name == "other"
    fresh.delete("vault")  # the officer can remove it
    assert fresh.names() == ["other"]


def test_registry_refuses_a_record_of_another_seed(tmp_path):
    other = Keystore(NETWORK)
    other.load_mnemonic(bip39.mnemonic_from_bytes(bytes(16)))
    (tmp_path / "theirs").mkdir()
    theirs = _registry(tmp_path / "theirs", other)
    theirs.add(parse(form("wsh"), "vault"))
    ours = _registry(tmp_path / "ours")
    os.makedirs(tmp_path / "ours" / "wallets")
    _file(tmp_path / "ours", "vault").write_bytes(_file(tmp_path / "theirs", "vault").read_bytes())
    with pytest.raises(StorageError, match="wallet vault: record fails its integrity check"):
        ours.get("vault")


# --- under the real MicroPython VM


def _mpy(body, **kw):
    code = (
        "import json\n"
        "from signer import crypto\n"
        "crypto.install()\n"
        "from embit.networks import NETWORKS\n"
        "from signer import wallets\n"
        "from signer.errors import DeviceError\n"
        "from signer.keystore import Keystore\n"
        "NET = NETWORKS[%r]\n"
        "ks = Keystore(%r)\n"
        "ks.load_mnemonic(%r)\n" % (NETWORK, NETWORK, MNEMONIC)
    ) + body
    return mpy.run_json(code, **kw)


def test_micropython_parse_derive_policy():
    texts = {name: form(name) for name in FORMS}
    bad = [_fill(t) for t, _ in PARSE_REFUSALS] + [_one_key(e) for e, _ in KEY_REFUSALS]
    bad_policy = [form("wsh", 3, 1), "wsh(sortedmulti(2,%s,%s))" % (key(ROOTS[2]), key(ROOTS[1], fp=ROOTS[0].my_fingerprint))]
    [out] = _mpy(
        """
import gc
from binascii import hexlify
texts = %r
res = {"forms": {}, "bad": [], "policy": [], "mem": 0}
def hx(s):
    return None if s is None else hexlify(s.data if hasattr(s, "data") else s).decode()
for name in sorted(texts):
    w = wallets.parse_wallet("T", texts[name], NET)
    ours = wallets.check_policy(w, ks)
    r = {"descriptor": w.descriptor, "kind": w.kind, "ours": ours, "derived": []}
    for change, index in ((0, 0), (1, 7), (0, 2147483647)):
        d = w.derive(change, index)
        r["derived"].append([hx(d.script_pubkey), hx(d.witness_script), hx(d.redeem_script),
                             hx(d.leaf_script), hx(d.control_block), d.order, w.address(change, index)])
    res["forms"][name] = r
for text in %r:
    try:
        wallets.parse_wallet("T", text, NET)
        res["bad"].append(None)
    except DeviceError as e:
        res["bad"].append(e.message)
for text in %r:
    try:
        wallets.check_policy(wallets.parse_wallet("T", text, NET), ks)
        res["policy"].append(None)
    except DeviceError as e:
        res["policy"].append(e.message)
# RAM held by one 15-key wallet, parsed and derived once
gc.collect()
before = gc.mem_alloc()
w = wallets.parse_wallet("T", %r, NET)
w.derive(0, 0)
gc.collect()
res["mem"] = gc.mem_alloc() - before
print(json.dumps(res))
"""
        % (texts, bad, bad_policy, FORMS["wsh"].replace("(2,", "(15,").format(k=keys(15)))
    )
    for name, text in texts.items():
        r = out["forms"][name]
        w = parse(text)
        assert r["descriptor"] == w.descriptor and r["kind"] == w.kind and r["ours"] == [0]
        for (change, index), got in zip(((0, 0), (1, 7), (0, 2**31 - 1)), r["derived"]):
            spk, script_, cb = ref_wallet(w.descriptor, change, index)
            d = w.derive(change, index)
            assert got[0] == spk.hex()
            assert got[1:5] == [
                None if s is None else s.data.hex() if hasattr(s, "data") else s.hex()
                for s in (d.witness_script, d.redeem_script, d.leaf_script, d.control_block)
            ]
            assert got[5] == d.order and got[6] == w.address(change, index)
    want = [_fill(m) for _, m in PARSE_REFUSALS] + [m for _, m in KEY_REFUSALS]
    for got, expected in zip(out["bad"], want):
        assert got is not None and got.startswith(expected), (got, expected)
    assert out["policy"] == [
        "none of the keys is this device's",
        "cosigner 2 (fingerprint %s): fingerprint is this device's but the xpub is not" % ROOTS[0].my_fingerprint.hex(),
    ]
    # a 15-key wallet stays small next to the ESP32's ~100 KB heap
    assert out["mem"] < 40000, out["mem"]


def test_micropython_registry(tmp_path):
    w1, w2 = parse(form("wsh"), "vault"), parse(form("tr-key"), "tr vault")
    [out] = _mpy(
        """
from binascii import hexlify
res = {}
reg = wallets.Registry(%r, ks, NET)
def attempt(f):
    try:
        return f()
    except DeviceError as e:
        return [e.name, e.message]
w1 = wallets.parse_wallet("vault", %r, NET)
w2 = wallets.parse_wallet("tr vault", %r, NET)
wallets.check_policy(w1, ks)
res["mac1"] = hexlify(reg.add(w1)).decode()
res["mac2"] = hexlify(reg.add(w2)).decode()
res["again"] = hexlify(reg.add(wallets.parse_wallet("vault", w1.descriptor, NET))).decode()
res["names"] = reg.names()
got = wallets.Registry(%r, ks, NET).get("tr vault")
res["get"] = got.descriptor
res["ours"] = [c.ours for c in got.cosigners] + [got.internal.ours]
res["reuse"] = attempt(lambda: reg.add(wallets.parse_wallet("vault", w2.descriptor, NET)))
# flip one byte of the record
path = %r
with open(path) as f:
    raw = f.read()
i = raw.find('"mac": "') + 9
with open(path, "w") as f:
    f.write(raw[:i] + ("0" if raw[i] != "0" else "1") + raw[i + 1 :])
fresh = wallets.Registry(%r, ks, NET)
res["tampered"] = attempt(lambda: fresh.get("vault"))
res["all"] = attempt(fresh.all)
res["other_ok"] = fresh.get("tr vault").name
fresh.delete("vault")
res["after"] = fresh.names()
res["missing"] = attempt(lambda: fresh.get("vault"))
other = Keystore(%r)
other.load_mnemonic(%r)
foreign = wallets.Registry(%r, other, NET)
res["foreign"] = attempt(lambda: foreign.get("tr vault"))
print(json.dumps(res))
"""
        % (
            str(tmp_path),
            w1.descriptor,
            w2.descriptor,
            str(tmp_path),
            str(_file(tmp_path, "vault")),
            str(tmp_path),
            NETWORK,
            bip39.mnemonic_from_bytes(bytes(16)),
            str(tmp_path),
        )
    )
    key_ = wallets.registration_key(KS)
    assert out["mac1"] == wallets.registration_mac(key_, "vault", w1.descriptor).hex() == out["again"]
    assert out["mac2"] == wallets.registration_mac(key_, "tr vault", w2.descriptor).hex()
    assert out["names"] == ["tr vault", "vault"]
    assert out["get"] == w2.descriptor
    assert out["ours"] == [True, False, False, False]
    assert out["reuse"] == ["BAD_PARAMS", "wallet name vault is already used for other keys"]
    assert out["tampered"] == out["all"] == ["STORAGE", "wallet vault: record fails its integrity check"]
    assert out["other_ok"] == "tr vault" and out["after"] == ["tr vault"]
    assert out["missing"] == ["BAD_PARAMS", "no wallet named vault"]
    assert out["foreign"] == ["STORAGE", "wallet tr vault: record fails its integrity check"]
    # the host reads what the device wrote
    assert _registry(tmp_path).get("tr vault").descriptor == w2.descriptor

"""Signing through the emulator's pty, as a host does with hardware: every
input type and mixes, PSBT v0 and v2, checked by libbitcoinkernel."""

import subprocess
import sys

import pytest
from embit import bip32, bip39, script
from embit.networks import NETWORKS
from embit.psbt import PSBT
from embit.transaction import Transaction

from amanat import finalize, kernel, txbuild
from amanat.errors import DeviceError
from e2e_support import MNEMONIC, sign_checked

NETWORK = "regtest"
NET = NETWORKS[NETWORK]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
KINDS = list(txbuild.PURPOSE)


def account(kind, root=ROOT):
    path = txbuild.account_path(kind, NETWORK)
    return txbuild.Account(kind, root.derive(path).to_public(), root.my_fingerprint, path)


FOREIGN = bip32.HDKey.from_seed(bytes(range(64)), version=NET["xprv"])
PAYEE = script.p2wpkh(FOREIGN.derive("m/84h/1h/0h/0/0").key)


def build(kinds, version=0, foreign=False, tag=1):
    coins = [(account(k), i, 40_000 + 1000 * i) for i, k in enumerate(kinds)]
    if foreign:
        coins.append((account("p2wpkh", FOREIGN), 0, 30_000))
    total = sum(c[2] for c in coins)
    return txbuild.build_spend(coins, PAYEE, total // 2, 800, change=(account(kinds[0]), 3),
                               tag=tag, version=version)


@pytest.mark.parametrize("version", [0, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_each_input_type(auto_emu, kind, version):
    built = build([kind], version=version, tag=10 + KINDS.index(kind) + 10 * version)
    psbt, review = sign_checked(auto_emu, built)
    assert (psbt.version or 0) == version
    tx = finalize.finalize(psbt)
    kernel.verify_transaction(tx, built.spent)
    assert review["fee_sat"] == 800
    assert [s["amount_sat"] for s in review["spends"]] == [built.psbt.tx.vout[0].value if version == 0
                                                           else built.psbt.outputs[0].value]
    assert len(review["change"]) == 1
    rec = [s for s in auto_emu.screens() if s["screen"] == "review_tx"][-1]
    assert rec["answer"] == "approve" and rec["fee_sat"] == 800
    assert rec["spends"][0]["address"] == PAYEE.address(NET)
    assert rec["change"][0]["address"].startswith(("bcrt1", "2", "m", "n"))
    assert any("Fee" in line for line in rec["lines"])
    # the trail names the transaction: the txid the network will see, and the PSBT as the device got it
    # (with the host's anti-exfil commitments)
    # (not for legacy and P2SH inputs: their signatures, in the scriptSig, are part of the txid)
    txid = Transaction.parse(tx).txid().hex() if kind in ("p2wpkh", "p2tr") else None
    assert rec["txid"] == review["txid"] == txid
    assert len(bytes.fromhex(rec["psbt_sha256"])) == 32


@pytest.mark.parametrize("version", [0, 2])
def test_mixed_with_foreign_input(auto_emu, version):
    built = build(KINDS, version=version, foreign=True, tag=40 + version)
    psbt, review = sign_checked(auto_emu, built)
    foreign = psbt.inputs[-1]
    assert not foreign.partial_sigs and not foreign.final_scriptwitness
    assert any("not signed by this device" in w for w in review["warnings"])
    # The host signs the foreign input; then the whole transaction is valid.
    n = psbt.sign_with(FOREIGN)
    assert n == 1
    tx = finalize.finalize(psbt)
    kernel.verify_transaction(tx, built.spent)


def _refused(emu, raw, name, words):
    with emu.client() as c:
        with pytest.raises(DeviceError) as e:
            c.sign_psbt(raw)
        assert e.value.name == name, e.value
        assert words in e.value.message, e.value.message
        assert c.info()["locked"] is False  # still up


def test_garbage_and_truncated_psbts(auto_emu):
    raw = build(["p2wpkh"], tag=50).psbt.serialize()
    _refused(auto_emu, b"psbt\xff" + b"\x00" * 40, "BAD_PSBT", "")
    _refused(auto_emu, raw[: len(raw) // 2], "BAD_PSBT", "")
    _refused(auto_emu, b"not a psbt at all", "BAD_PSBT", "")


def test_no_input_of_ours(auto_emu):
    coins = [(account("p2wpkh", FOREIGN), 0, 30_000)]
    built = txbuild.build_spend(coins, PAYEE, 20_000, 500, tag=60)
    _refused(auto_emu, built.psbt.serialize(), "REFUSED", "no input of this PSBT belongs to this device")


def test_outputs_exceed_inputs(auto_emu):
    built = build(["p2wpkh"], tag=61)
    built.psbt.outputs[0].value = 10**8
    _refused(auto_emu, built.psbt.serialize(), "REFUSED", "exceed")


def test_previous_transaction_must_match(auto_emu):
    built = build(["p2wpkh", "p2pkh"], tag=62)
    other = txbuild.funding_tx([(PAYEE, 1234)], tag=99)
    built.psbt.inputs[1].non_witness_utxo = other
    _refused(auto_emu, built.psbt.serialize(), "REFUSED", "input 1")


def test_officer_rejects_the_transaction(manual_emu):
    built = build(["p2wpkh", "p2tr"], tag=70)
    raw = built.psbt.serialize()
    with manual_emu.client() as c, manual_emu.debuglink() as dl:
        digest = __import__("hashlib").sha256(raw).digest()
        c.t.call("psbt_begin", {"length": len(raw)})
        c.t.call("psbt_chunk", {"offset": 0, "data": raw})
        assert c.t.call("psbt_end")["sha256"] == digest
        rid = c.t.send("sign_psbt", {"sha256": digest})
        screen = dl.wait_screen("review_tx")
        assert screen["fee_sat"] == 800 and screen["spends"][0]["address"] == PAYEE.address(NET)
        assert c.t.call("ping") == {"busy": "review_tx", "progress": None}
        dl.reject()
        with pytest.raises(DeviceError) as e:
            c.t.wait(rid, 10)
        assert e.value.name == "REJECTED"
        with pytest.raises(DeviceError):
            c.t.call("psbt_read", {"offset": 0, "size": 100})
    assert manual_emu.answered()[-1]["answer"] == "reject"


def test_cli_sign(auto_emu, tmp_path):
    built = build(["p2wpkh", "p2sh-p2wpkh"], tag=80)
    src = tmp_path / "tx.psbt"
    src.write_bytes(built.psbt.serialize())
    amanat = [sys.executable, "-m", "amanat.cli"]
    out = subprocess.run(amanat + ["sign", str(src), "--port", auto_emu.port], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "signature(s) verified" in out.stdout and "change" in out.stdout
    signed = PSBT.parse((tmp_path / "tx.signed.psbt").read_bytes())
    kernel.verify_transaction(finalize.finalize(signed), built.spent)
    # A refused PSBT: one line on stderr, exit code 5, no traceback.
    bad = tmp_path / "bad.psbt"
    bad.write_bytes(b"psbt\xff" + b"\x01" * 30)
    out = subprocess.run(amanat + ["sign", str(bad), "--port", auto_emu.port], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 5 and "Traceback" not in out.stderr and "BAD_PSBT" in out.stderr


def test_no_secret_crosses_the_line(auto_emu):
    """Everything the device sends in a working session, searched for the
    seed, the entropy, the master private key and extended private keys."""
    heard = bytearray()
    built = build(["p2wpkh", "p2tr"], tag=90)
    with auto_emu.client() as c:
        read = c.t.ser.read

        def tee(n=1):
            data = read(n)
            heard.extend(data)
            return data

        c.t.ser.read = tee
        c.info()
        for path in ("m", "m/84h/1h/0h", "m/86h/1h/0h/0/0"):
            c.get_xpub(path)
        c.get_descriptors(0)
        c.sign_psbt(built.psbt.serialize())
        c.sign_message(b"audit", "m/44h/1h/0h/0/0")
    assert len(heard) > 2000
    seed = bip39.mnemonic_to_seed(MNEMONIC)
    secrets = [seed, bip39.mnemonic_to_bytes(MNEMONIC), ROOT.secret, ROOT.derive("m/84h/1h/0h").secret,
               ROOT.derive("m/84h/1h/0h/0/0").secret, b"tprv", b"xprv", MNEMONIC.split()[1].encode()]
    for s in secrets:
        assert bytes(s) not in heard


def test_two_thousand_outputs_sign_at_the_default_heap(auto_emu):
    """Found by an attack review: 2,000 small outputs (a 64 KB PSBT) ran the
    review out of memory. The review keeps totals and pages the outputs from
    flash, so the size of the transaction does not matter."""
    more = [(script.Script(b"\x00\x14" + n.to_bytes(20, "big")), 1_000) for n in range(1, 2_000)]
    coins = [(account("p2wpkh"), 7, 2_200_000)]
    built = txbuild.build_spend(coins, PAYEE, 1_000, 70_000, change=(account("p2wpkh"), 9), tag=77, more=more)
    psbt, review = sign_checked(auto_emu, built)
    kernel.verify_transaction(finalize.finalize(psbt), built.spent)
    assert review["outputs"] == 2_001 and review["spends_count"] == 2_000 and review["truncated"]
    screens = auto_emu.screens()
    pages = [s for s in screens if s["screen"] == "review_outputs" and s["total"] == 2_001]
    assert len(pages) == 201 and pages[-1]["last"] == 2_000


@pytest.mark.parametrize("anti_exfil, least", [(False, 3), (True, 1)])
def test_signing_over_a_line_that_damages_bytes(auto_emu, anti_exfil, least):
    """Bytes dropped or flipped both ways: CRCs catch every damaged frame, the
    host sends the request again, the device answers a repeat with the answer
    it gave; the result is a correct signed PSBT (checked by the kernel) or a
    clear error, never a wrong signature. Anti-exfil's two rounds send about
    twice the frames: fewer tries get through."""
    from e2e_support import LossyLine

    from amanat.client import Client
    from amanat.errors import AmanatError

    built = build(["p2wpkh", "p2tr", "p2sh-p2wpkh"], tag=91)
    line = LossyLine(auto_emu.port, rate=1 / 1500, seed=7)  # about one frame in two is damaged
    ok = 0
    try:
        for n in range(6):
            try:
                with Client(line.port, timeout=1) as c:
                    signed = c.sign_psbt(built.psbt.serialize(), anti_exfil=anti_exfil)
            except AmanatError as e:
                assert str(e) and "Traceback" not in str(e)
                continue
            kernel.verify_transaction(finalize.finalize(PSBT.parse(signed.psbt)), built.spent)
            ok += 1
    finally:
        line.close()
    assert line.damaged > 0 and ok >= least, (line.damaged, ok)


@pytest.mark.parametrize("path,unusual", [("m/84h/1h/0h/0/7", False), ("m/0h", True), ("m/84h/0h/0h/0/7", True),
                                          ("m/84h/1h/0h/0/7/1/2/3", True)])
def test_message_signing_warns_on_unusual_paths_as_addresses_do(auto_emu, path, unusual):
    with auto_emu.client() as c:
        c.sign_message(b"hex: ff", path)
        c.sign_message(b"\xff", path)
    text, binary = [s for s in auto_emu.screens() if s["screen"] == "sign_message"][-2:]
    assert text["lines"][:2] == ["Text message, 7 bytes:", '"hex: ff"'] and text["encoding"] == "text"
    assert binary["lines"][:2] == ["Binary message (not text), 1 byte, in hex:", "ff"] and binary["length"] == 1
    for s in (text, binary):
        assert s["unusual"] is unusual
        assert ("Warning: unusual path for this address type" in s["lines"]) is unusual

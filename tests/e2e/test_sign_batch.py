"""Batches through the emulator's pty: `amanat sign --batch` uploads several
PSBTs, the device reviews them as one, the officer approves once, and each
signed PSBT is verified, saved, finalized and checked by libbitcoinkernel."""

import json
import os
import subprocess
import sys

from embit import bip32, script
from embit.networks import NETWORKS

from amanat import finalize, kernel, psbt_raw, txbuild
from e2e_support import MNEMONIC  # noqa: F401  (the emulator's seed: account() derives from it)
from test_signing import account

NET = NETWORKS["regtest"]
AMANAT = os.path.join(os.path.dirname(sys.executable), "amanat")
PAYEES = [script.p2wpkh(bip32.HDKey.from_seed(bytes([n]) * 32).key.get_public_key()) for n in range(3)]


def builds():
    """Three spends of different input types, two of them to the same payee."""
    out = []
    for n, (kind, pay) in enumerate((("p2wpkh", 0), ("p2tr", 1), ("p2sh-p2wpkh", 0))):
        acct = account(kind)
        out.append(txbuild.build_spend([(acct, 20 + n, 90_000), (acct, 30 + n, 15_000)], PAYEES[pay],
                                       60_000 + 1000 * n, 900 + n, change=(acct, 4), tag=700 + 10 * n))
    return out


def amanat(*args):
    return subprocess.run([AMANAT, *args], capture_output=True, text=True, timeout=300)


def test_a_batch_signed_after_one_approval(auto_emu, tmp_path):
    built = builds()
    folder = tmp_path / "transfers"
    folder.mkdir()
    for n, b in enumerate(built):
        (folder / f"t{n}.psbt").write_bytes(b.psbt.serialize())
    before = len(auto_emu.screens())
    out = amanat("sign", "--batch", str(folder), "--out", str(tmp_path / "signed"), "--port", auto_emu.port,
                 "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    review = res["review"]
    assert review["transactions"] == 3 and review["inputs"] == 6
    assert review["fee_sat"] == 900 + 901 + 902
    dests = {d["address"]: (d["amount_sat"], d["outputs"]) for d in review["destinations"]}
    assert dests == {PAYEES[0].address(NET): (60_000 + 62_000, 2), PAYEES[1].address(NET): (61_000, 1)}
    assert [c["outputs"] for c in review["change"]] == [3]
    shown = [s["screen"] for s in auto_emu.screens()[before:] if "answer" in s]
    assert shown == ["review_batch"]  # one approval, no screen per transaction
    for n, (b, row) in enumerate(zip(built, res["files"])):
        assert row["written"] and row["output"] == str(tmp_path / "signed" / f"t{n}.signed.psbt")
        assert row["signatures"] == 2 and row["present"] == [[1, 1], [1, 1]]
        tx = finalize.finalize(psbt_raw.parse_psbt(open(row["output"], "rb").read()))
        kernel.verify_transaction(tx, b.spent)


def test_progress_names_each_psbt(auto_emu):
    built = builds()[:2]
    seen = set()
    with auto_emu.client() as c:
        result = c.sign_batch([b.psbt.serialize() for b in built],
                              lambda stage, done, total, k: seen.add((stage, done if stage == "device" else None, k)))
    assert [s.signatures for s in result.signed] == [2, 2]
    for k in (0, 1):
        assert {("upload", None, k), ("download", None, k), ("verify", None, k)} <= seen
    # what the device said it worked on, and on which PSBT (pings once a
    # second: a small batch may be done before the first)
    assert all(k in (0, 1, None) for stage, _, k in seen if stage == "device")


def test_a_psbt_the_device_would_refuse_fails_the_batch(auto_emu, tmp_path):
    built = builds()
    acct = account("p2wpkh")
    greedy = txbuild.build_spend([(acct, 40, 90_000)], PAYEES[2], 30_000, 50_000, change=(acct, 4), tag=790)
    files = []
    for n, psbt in enumerate([built[0].psbt, greedy.psbt, built[1].psbt]):
        files.append(str(tmp_path / f"t{n}.psbt"))
        open(files[-1], "wb").write(psbt.serialize())
    before = len(auto_emu.screens())
    out = amanat("sign", "--batch", *files, "--port", auto_emu.port)
    assert out.returncode == 5, out.stderr
    assert "PSBT 1 of the batch" in out.stderr and "fee" in out.stderr
    assert not [s for s in auto_emu.screens()[before:] if s["screen"] == "review_batch"]
    assert not list(tmp_path.glob("*.signed.psbt"))


def test_batch_arguments_are_checked_before_the_device(tmp_path):
    (tmp_path / "a.psbt").write_bytes(builds()[0].psbt.serialize())
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, words in ((["--batch", str(empty)], "no .psbt files"),
                        (["--batch", str(tmp_path / "a.psbt"), str(tmp_path / "a.psbt")], "named twice"),
                        (["--batch", str(tmp_path / "a.psbt"), "-o", "x.psbt"], "--out"),
                        ([str(tmp_path / "a.psbt"), str(tmp_path / "a.psbt")], "--batch")):
        out = amanat("sign", *args, "--port", "/dev/null")
        assert out.returncode in (2, 8) and words in out.stderr, (args, out.stderr)

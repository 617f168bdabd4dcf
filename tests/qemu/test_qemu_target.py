"""The QEMU target end to end, through the tools a custodian uses: `amanat`,
`amanat-hwi` (as Bitcoin Core calls it), the audit trail, a restart on the
same state folder. Signed transactions are finalized on the host and
checked by libbitcoinkernel."""

import base64
import json
import os
import signal
import subprocess
import sys

from embit import bip32, bip39, script
from embit.descriptor.checksum import add_checksum
from embit.networks import NETWORKS
from embit.psbt import PSBT

from amanat import audit, emulator, finalize, kernel, psbt_tools, txbuild
from amanat.psbt_raw import parse_psbt
from e2e_support import MNEMONIC, Emu

NET = NETWORKS["regtest"]
ROOT = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC), version=NET["xprv"])
FP = ROOT.my_fingerprint.hex()
ALICE = bip32.HDKey.from_seed(bytes(range(64)), version=NET["xprv"])
BOB = bip32.HDKey.from_seed(bytes(range(1, 65)), version=NET["xprv"])
PAYEE = script.p2wpkh(bip32.HDKey.from_seed(bytes(32)).key.get_public_key())
BIN = os.path.dirname(sys.executable)


def run(tool, *args):
    return subprocess.run([os.path.join(BIN, tool), *args], capture_output=True, text=True, timeout=300)


def hwi(port, *args):
    out = run("amanat-hwi", "-d", port, "--chain", "regtest", *args)
    assert out.returncode == 0, out.stderr
    [line] = out.stdout.splitlines()
    return json.loads(line)


def account(kind):
    path = txbuild.account_path(kind, "regtest")
    return txbuild.Account(kind, ROOT.derive(path).to_public(), ROOT.my_fingerprint, path)


def test_boots_as_the_qemu_target(qemu_emu):
    out = run("amanat", "info", "--json", "--port", qemu_emu.port)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["target"] == "qemu" and info["model"] == "amanat-qemu" and info["fingerprint"] == FP
    heap = info["heap"]
    assert heap["size"] == 131072
    assert 0 < heap["free_after_imports"] < heap["free_after_boot"] < heap["size"]
    assert heap["free"] <= heap["free_after_imports"]
    assert qemu_emu.rec["target"] == "qemu"


def test_found_as_an_emulator(qemu_emu):
    out = run("amanat-hwi", "--emulators", "enumerate")
    assert out.returncode == 0, out.stderr
    [dev] = [d for d in json.loads(out.stdout) if d.get("path") == qemu_emu.port]
    assert dev["fingerprint"] == FP


def test_single_sig_through_hwi(qemu_emu):
    coins = [(account(k), i, 40_000 + i) for i, k in enumerate(txbuild.PURPOSE)]
    built = txbuild.build_spend(coins, PAYEE, 100_000, 2_000, change=(account("p2wpkh"), 3), tag=900)
    res = hwi(qemu_emu.port, "signtx", base64.b64encode(built.psbt.serialize()).decode())
    assert res["signed"]
    kernel.verify_transaction(finalize.finalize(PSBT.parse(base64.b64decode(res["psbt"]))), built.spent)
    with qemu_emu.client() as c:
        heap = c.info()["heap"]
    assert 0 < heap["free_after_imports"] < heap["free_after_boot"]
    assert heap["peak"] is None  # not started to measure


def test_two_of_three_multisig_through_hwi(qemu_emu):
    w = txbuild.Multisig("wsh", 2, True, [txbuild.cosigner(r, "m/48h/1h/0h/2h") for r in (ROOT, ALICE, BOB)])
    reg = hwi(qemu_emu.port, "registerdescriptor", "Vault", w.descriptor())
    coins = [(w, i, 60_000 + i) for i in range(2)]
    built = txbuild.build_spend(coins, PAYEE, 100_000, 1_500, change=(w, 2), tag=910)
    res = hwi(qemu_emu.port, "signtx", base64.b64encode(built.psbt.serialize()).decode(),
              "--registration", reg["registration"])
    psbt = PSBT.parse(base64.b64decode(res["psbt"]))
    psbt.sign_with(ALICE)  # the second officer, on another device
    kernel.verify_transaction(finalize.finalize(psbt), built.spent)
    [review] = [s for s in qemu_emu.screens() if s["screen"] == "review_tx" and s.get("wallet") == "Vault"]
    assert review["answer"] == "approve"


def test_audit_trail_is_screens_jsonl(qemu_emu, tmp_path):
    """STATE/screens.jsonl is the device's trail byte for byte, and its hash chain holds."""
    out = run("amanat", "audit", "--verify", "-o", str(tmp_path / "trail.jsonl"), "--port", qemu_emu.port)
    assert out.returncode == 0, out.stderr
    trail = (tmp_path / "trail.jsonl").read_bytes()
    assert trail == (qemu_emu.state / "screens.jsonl").read_bytes()
    assert [r["screen"] for r in qemu_emu.screens()][:5] == ["boot", "setup_create", "setup_kind", "setup_mnemonic",
                                                             "setup_pin"]
    assert len(qemu_emu.screens()) > 5


def test_proof_of_reserves_and_a_signed_trail_on_the_microcontroller(qemu_emu, tmp_path):
    """The frozen firmware recognises a proof, signs it, and signs its trail's
    checkpoints (anti-exfil) within the microcontroller's heap."""
    import hashlib

    from amanat import reserves

    path = txbuild.account_path("p2wpkh", "regtest")
    acct = txbuild.Account("p2wpkh", ROOT.derive(path).to_public(), ROOT.my_fingerprint, path)
    coins = [reserves.Coin(hashlib.sha256(b"q%d" % k).digest(), 0, 40_000, 0, k) for k in range(3)]
    psbt = reserves.build_proof(acct, b"QEMU reserve", coins)
    with qemu_emu.client() as c:
        signed = c.sign_psbt(reserves.serialize_proof(psbt))
    assert signed.signatures == 4 and signed.review["proof"]["total_sat"] == 120_000
    assert reserves.verify_proof(parse_psbt(signed.psbt)).total == 120_000  # libbitcoinkernel
    out = run("amanat", "audit", "export", "-o", str(tmp_path / "t.jsonl"), "--port", qemu_emu.port, "--json")
    assert out.returncode == 0, out.stderr
    key = ROOT.derive("m/1095582030h/0h").key.sec().hex()
    out = run("amanat", "audit", "verify", str(tmp_path / "t.jsonl"), "--key", key, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["proof_of_reserves"] == 1


def _show_address(emu, i):
    pub = ROOT.derive(f"m/84h/1h/0h/0/{i}").key.sec().hex()
    with emu.client() as c:
        return c.display_address(add_checksum(f"wpkh([{FP}/84h/1h/0h/0/{i}]{pub})"))


def test_restart_keeps_the_flash(qemu_ready, tmp_path):
    """Stopped and started again on the same folder: the seed (unlocked with
    the PIN, no words), a registered wallet and the audit trail are kept."""
    emu = Emu(tmp_path, target="qemu", mnemonic=MNEMONIC, auto_confirm=True).start()
    try:
        with emu.client() as c:
            c.t.call("register_wallet", {"name": "Kept", "descriptor": txbuild.Multisig(
                "wsh", 2, True, [txbuild.cosigner(r, "m/48h/1h/0h/2h") for r in (ROOT, ALICE, BOB)]).descriptor()})
        _show_address(emu, 1)
    finally:
        emu.stop()
    before = (tmp_path / "screens.jsonl").read_bytes()
    assert (tmp_path / "flash.img").stat().st_size == emulator.QEMU_FLASH_SIZE
    emu = Emu(tmp_path, target="qemu", auto_confirm=True).start()
    try:
        with emu.client() as c:
            info = c.info()
            assert info["fingerprint"].hex() == FP and not info["locked"]
            assert [w["name"] for w in c.t.call("list_wallets")["wallets"]] == ["Kept"]
        _show_address(emu, 2)
        trail = (tmp_path / "screens.jsonl").read_bytes()
        assert trail.startswith(before) and len(trail) > len(before)
        assert audit.check_chain(trail.splitlines()) == []
        assert emu.answered()[-1]["screen"] == "display_address" and emu.screens()[-1]["screen"] == "checkpoint"
    finally:
        emu.stop()
    assert not (tmp_path / "screens.lost.jsonl").exists()


def test_killed_qemu_loses_what_changed_since_start(qemu_ready, tmp_path):
    """Without `stop` the flash is not saved: the next start has the flash of
    the last stop; the trail records it lost are kept in screens.lost.jsonl."""
    emu = Emu(tmp_path, target="qemu", mnemonic=MNEMONIC, auto_confirm=True).start()
    emu.stop()
    saved = (tmp_path / "screens.jsonl").read_bytes()
    emu.start()
    _show_address(emu, 7)
    os.killpg(emu.rec["pid"], signal.SIGKILL)
    os.waitpid(emu.rec["pid"], 0)
    emu.stop()  # only tidies the records: nothing runs any more
    emu.start()
    try:
        trail = (tmp_path / "screens.jsonl").read_bytes()
        assert trail.startswith(saved) and b'"display_address"' not in trail  # and this start's unlock
        lost = (tmp_path / "screens.lost.jsonl").read_bytes()
        assert lost.startswith(saved) and b'"display_address"' in lost[len(saved):]
        with emu.client() as c:
            assert c.info()["fingerprint"].hex() == FP
    finally:
        emu.stop()


def test_signing_memory_is_flat_on_128k(qemu_ready, tmp_path):
    """The heap's high-water mark while signing does not grow with the
    inputs (the 10 against 1000 inputs figures: `amanat bench --memory`)."""
    from amanat import bench_memory

    emu = Emu(tmp_path, target="qemu", mnemonic=MNEMONIC, auto_confirm=True, measure_heap=True).start()
    try:
        small = bench_memory.sign_timed(emu.port, bench_memory.p2wpkh_psbt(5))
        large = bench_memory.sign_timed(emu.port, bench_memory.p2wpkh_psbt(40))
    finally:
        emu.stop()
    assert small["signatures"] == 5 and large["signatures"] == 40
    assert small["heap"]["size"] == 131072
    assert large["heap"]["peak"] - small["heap"]["peak"] <= bench_memory.FLAT_BYTES
    assert large["wire_ratio"] <= bench_memory.WIRE_RATIO


def test_anti_exfil_signing_memory_is_flat_on_128k(qemu_ready, tmp_path):
    """Both anti-exfil rounds on 128 KiB: what the device keeps between them
    (the plan, and each signature's commitment and opening in flash) does
    not grow the heap's high-water mark with the inputs."""
    from amanat import bench_memory

    emu = Emu(tmp_path, target="qemu", mnemonic=MNEMONIC, auto_confirm=True, measure_heap=True).start()
    peaks = []
    try:
        with emu.client() as c:
            for n in (5, 40):
                raw = bench_memory.p2wpkh_psbt(n)
                signed = c.sign_psbt(raw)
                assert signed.signatures == signed.anti_exfil == n
                assert psbt_tools.finalize(signed.psbt).checked  # libbitcoinkernel ran every input's script
                peaks.append(c.info()["heap"]["peak"])
    finally:
        emu.stop()
    assert peaks[1] - peaks[0] <= bench_memory.FLAT_BYTES, peaks


def test_a_batch_signs_in_the_heap_of_one_psbt(qemu_ready, tmp_path):
    """`amanat sign --batch` on 128 KiB: each PSBT kernel-checked; the peak
    heap of the batch within FLAT_BYTES of one of its PSBTs signed alone."""
    from amanat import bench_memory

    raws = bench_memory.batch_psbts(3, 8)
    emu = Emu(tmp_path / "dev", target="qemu", mnemonic=bench_memory.MNEMONIC, auto_confirm=True,
              measure_heap=True).start()
    try:
        alone = bench_memory.sign_timed(emu.port, raws[0])
        for k, raw in enumerate(raws):
            (tmp_path / f"t{k}.psbt").write_bytes(raw)
        out = run("amanat", "sign", "--batch", *[str(tmp_path / f"t{k}.psbt") for k in range(3)],
                  "--port", emu.port, "--json")
        assert out.returncode == 0, out.stderr
        with emu.client() as c:
            peak = c.info()["heap"]["peak"]
    finally:
        emu.stop()
    res = json.loads(out.stdout)
    assert res["review"]["transactions"] == 3 and res["review"]["inputs"] == 24
    assert len(res["review"]["destinations"]) == 4  # the shared payee and one of each
    for k, raw in enumerate(raws):
        signed = PSBT.parse((tmp_path / f"t{k}.signed.psbt").read_bytes())
        assert sum(len(i.partial_sigs) for i in signed.inputs) == 8
    assert peak - alone["heap"]["peak"] <= bench_memory.FLAT_BYTES

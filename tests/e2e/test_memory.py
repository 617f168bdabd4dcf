"""Flat memory on the unix port: the heap's high-water mark while signing
(info's heap.peak, sampled at every progress point by an emulator started
with --measure-heap) does not grow with the number of inputs; the upload
costs little more than the PSBT's own bytes. The 1000-input figures are
`amanat bench --memory`'s."""

from amanat import bench_memory
from e2e_support import MNEMONIC, Emu


def test_signing_memory_does_not_grow_with_the_inputs(tmp_path):
    emu = Emu(tmp_path, mnemonic=MNEMONIC, auto_confirm=True, measure_heap=True).start()
    try:
        small = bench_memory.sign_timed(emu.port, bench_memory.p2wpkh_psbt(10))
        large = bench_memory.sign_timed(emu.port, bench_memory.p2wpkh_psbt(300))
        with emu.client() as c:
            heap = c.info()["heap"]
    finally:
        emu.stop()
    assert small["signatures"] == 10 and large["signatures"] == 300
    assert small["heap"]["peak"] > heap["size"] - heap["free_after_imports"]  # it measured the signing
    assert large["heap"]["peak"] - small["heap"]["peak"] <= bench_memory.FLAT_BYTES
    assert large["wire_ratio"] <= bench_memory.WIRE_RATIO


def test_an_emulator_not_measuring_reports_no_peak(auto_emu):
    with auto_emu.client() as c:
        c.sign_psbt(bench_memory.p2wpkh_psbt(2))
        assert c.info()["heap"]["peak"] is None

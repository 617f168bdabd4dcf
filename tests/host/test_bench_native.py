"""`amanat bench --native` runs and reports every figure (small sizes here;
the figures themselves are measured by the bench, not by tests)."""

from amanat import bench_native


def test_native_report_has_every_figure():
    lines = []
    rep = bench_native.report(say=lines.append, inputs=12, files=2, raw_count=50, device_sizes=(),
                               soft_sizes=(6, 24))
    assert set(rep["raw"]) == {"coincurve_sign_per_s", "coincurve_verify_per_s", "embit_sign_per_s",
                               "embit_verify_per_s"}
    assert all(v > 0 for v in rep["raw"].values())
    assert rep["verify_one"]["inputs"] == 12 and rep["verify_pool"]["inputs"] == 24
    assert rep["embit_sign_with"]["inputs_per_s"] > 0 and len(lines) == 4
    soft = rep["soft_sign"]
    assert (soft["small"]["inputs"], soft["big"]["inputs"], soft["pool"]["inputs"]) == (6, 24, 24)

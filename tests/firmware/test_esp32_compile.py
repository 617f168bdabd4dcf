"""Every firmware module compiles for the ESP32 (xtensawin), viper and native code included."""

import subprocess
from pathlib import Path

import pytest

from amanat import paths

FIRMWARE = Path(paths.firmware_dir())
MODULES = sorted(p for p in FIRMWARE.rglob("*.py") if p.name != "__init__.py" or p.parent != FIRMWARE)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_compiles_for_esp32(module, tmp_path):
    out = tmp_path / "out.mpy"
    proc = subprocess.run(
        [paths.mpy_cross_bin(), "-march=xtensawin", "-o", str(out), str(module)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0

"""The firmware and board code ship inside the wheel, so `pip install .` can run them."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def declared_packages():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(cfg["tool"]["setuptools"]["packages"])


def test_every_firmware_folder_is_declared():
    declared = declared_packages()
    for top, pkg in (("firmware", "amanat.firmware"), ("boards", "amanat.boards")):
        for d in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if d.name == "__pycache__" or not any(d.glob("*.py")):
                continue
            name = ".".join([pkg, *d.relative_to(ROOT / top).parts])
            assert name in declared, f"{d.relative_to(ROOT)} is not listed in pyproject.toml"


def test_wheel_contains_the_firmware(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("amanat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for src in (ROOT / "firmware").rglob("*.py"):
        if "__pycache__" in src.parts:
            continue
        assert "amanat/firmware/" + src.relative_to(ROOT / "firmware").as_posix() in names

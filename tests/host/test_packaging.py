"""The firmware and board code ship inside the wheel, so `pip install .` can run them."""

import json
import os
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


def _wheel(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("amanat-*.whl")
    return wheel


def test_installed_package_runs_the_emulator(tmp_path):
    """A plain (non-editable) install, used from outside the source tree,
    starts an emulator, talks to it over its pty and stops it."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(_wheel(tmp_path))], check=True, capture_output=True)
    code = """
import json, sys, amanat
from amanat import emulator
from amanat.client import Client
assert amanat.__file__.startswith(sys.argv[1]), amanat.__file__
rec = emulator.start(sys.argv[2], mnemonic="usage scrap plug noble deny corn permit stage tennis ceiling ranch hockey")
try:
    with Client(rec["port"]) as c:
        print(json.dumps({"fp": c.info()["fingerprint"].hex(), "firmware": emulator.paths.firmware_dir().as_posix()}))
finally:
    emulator.stop(sys.argv[2])
"""
    env = dict(os.environ, PYTHONPATH=str(site), AMANAT_EMULATOR_REGISTRY=str(tmp_path / "reg"))
    out = subprocess.run([sys.executable, "-c", code, str(site), str(tmp_path / "state")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["fp"] == "a55e080e"
    assert res["firmware"].startswith(str(site))


def test_wheel_contains_the_firmware(tmp_path):
    wheel = _wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for src in (ROOT / "firmware").rglob("*.py"):
        if "__pycache__" in src.parts:
            continue
        assert "amanat/firmware/" + src.relative_to(ROOT / "firmware").as_posix() in names

"""`amanat-hwi --version` prints the installed package's version, not a
number written a second time in the code."""

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path


def test_hwi_version_is_the_packages():
    hwi = Path(sys.executable).parent / "amanat-hwi"
    out = subprocess.run([str(hwi), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["amanat-hwi", version("amanat")]

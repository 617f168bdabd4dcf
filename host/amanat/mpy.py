"""Run code under the real MicroPython unix port with the firmware importable.

Used by the tests, the benchmarks and the demo: the firmware is run by the
`micropython` binary, never imported into CPython for these.
"""

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from . import paths


class MicroPythonError(RuntimeError):
    pass


def import_path(extra=()) -> str:
    # embit is found through a folder holding only it, so that MicroPython
    # cannot pick up any other CPython package by accident.
    # The folder is named after the embit it links to, so that checkouts
    # with different virtual environments never share a stale link.
    target = paths.embit_root() / "embit"
    tag = hashlib.sha256(str(target).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"amanat-mpy-path-{tag}"
    link = root / "embit"
    if not link.exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f"embit.{os.getpid()}"
        os.symlink(target, tmp)
        try:
            os.replace(tmp, link)
        except OSError:
            os.unlink(tmp)
    return ":".join([str(p) for p in extra] + [str(paths.firmware_dir()), str(paths.boards_dir()), str(root)])


def run(code: str, *, heap: int | None = None, timeout: float = 600, extra_path=()) -> str:
    """Run `code` under MicroPython; return its stdout, raise on failure."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
        script = f.name
    try:
        return run_script(script, heap=heap, timeout=timeout, extra_path=extra_path)
    finally:
        os.unlink(script)


def run_script(script, *, stdin: str = "", heap: int | None = None, timeout: float = 600, extra_path=()) -> str:
    """Run the file `script` under MicroPython with `stdin` as its input;
    return its stdout, raise MicroPythonError on failure."""
    cmd = [paths.micropython_bin()]
    if heap:
        cmd += ["-X", f"heapsize={heap}"]
    cmd.append(str(script))
    env = dict(os.environ, MICROPYPATH=import_path(extra_path))
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise MicroPythonError(
            f"micropython exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
            f"\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def run_json(code: str, **kw):
    """Run `code`, which prints one JSON document per line; return them all."""
    out = run(code, **kw)
    return [json.loads(line) for line in out.splitlines() if line.strip()]

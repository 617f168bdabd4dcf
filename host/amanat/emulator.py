"""Start and stop emulated devices: the firmware under the MicroPython unix
port, its serial line and DebugLink on pseudo-terminals, its flash a file in
the state folder (docs/architecture.md, "Emulator").

The device process gets the master side of each pty as stdin/stdout
(serial) and stderr (DebugLink), non-blocking, and also inherits the slave
sides, which it never uses: holding them open keeps the ptys alive while no
host is connected.
"""

import fcntl
import json
import os
import signal
import subprocess
import time
import tty
from pathlib import Path

from . import discovery, mpy, paths
from .client import Client
from .debuglink import DebugLink
from .errors import AmanatError, TransportError

NETWORKS = ("main", "test", "signet", "regtest")
# The emulator's PIN when none is given. The emulator is never for real keys.
DEFAULT_PIN = "123456"
START_TIMEOUT = 30.0


class EmulatorError(AmanatError):
    pass


def _record_path(state: Path) -> Path:
    return state / "emulator.json"


def read_record(state) -> dict | None:
    """The running emulator's record, or None if none runs on `state`."""
    state = Path(state).resolve()
    if not discovery.state_locked(state):
        return None
    try:
        return json.loads(_record_path(state).read_text())
    except (OSError, ValueError):
        return None


def _pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


def start(state, mnemonic=None, passphrase="", network="regtest", auto_confirm=False,
          heap=None, pin=DEFAULT_PIN) -> dict:
    """Start an emulator on `state`; return {"port", "debug_port", "pid", "state"}
    once it answers (set up with `mnemonic` on first start, unlocked with `pin`)."""
    state = Path(state).resolve()
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise EmulatorError("a PIN is 4 to 12 digits")  # checked before anything starts
    if network not in NETWORKS:
        raise EmulatorError(f"network must be one of {', '.join(NETWORKS)}")
    state.mkdir(parents=True, exist_ok=True)
    # The device process inherits this locked descriptor: the lock lives
    # exactly as long as the emulator, whatever happens to pids and records.
    lock = os.open(state / discovery.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise EmulatorError(f"an emulator is already running on {state}") from None
    m1, s1, port = _pty()
    m2, s2, debug_port = _pty()
    env = dict(
        os.environ,
        MICROPYPATH=mpy.import_path([paths.board_dir("unix")]),
        AMANAT_STATE=str(state),
        AMANAT_NETWORK=network,
        AMANAT_AUTO_CONFIRM="1" if auto_confirm else "0",
    )
    cmd = [paths.micropython_bin()]
    if heap:
        cmd += ["-X", f"heapsize={int(heap)}"]
    cmd.append(str(paths.firmware_dir() / "main.py"))
    try:
        proc = subprocess.Popen(cmd, stdin=m1, stdout=m1, stderr=m2, pass_fds=(s1, s2, lock),
                                cwd=state, env=env, start_new_session=True)
    finally:
        for fd in (m1, m2, s1, s2, lock):
            os.close(fd)
    record = {"port": port, "debug_port": debug_port, "pid": proc.pid, "state": str(state)}
    _record_path(state).write_text(json.dumps(record))
    reg = discovery.registry_dir()
    reg.mkdir(parents=True, exist_ok=True)
    (reg / f"{proc.pid}.json").write_text(json.dumps(record))
    try:
        _bring_up(proc, record, mnemonic, passphrase, pin)
    except BaseException:
        stop(state)
        raise
    return record


def _device_log(state) -> str:
    try:
        return (Path(state) / "device.log").read_text()[-2000:]
    except OSError:
        return ""


def _bring_up(proc, record, mnemonic, passphrase, pin):
    deadline = time.monotonic() + START_TIMEOUT
    info = None
    while info is None:
        if proc.poll() is not None:
            raise EmulatorError(f"the emulator exited ({proc.returncode}): {_device_log(record['state'])}")
        try:
            with Client(record["port"], timeout=2.0) as c:
                info = c.info()
        except TransportError:
            if time.monotonic() > deadline:
                raise EmulatorError("the emulator did not answer on its serial line") from None
            time.sleep(0.1)
    if not info["locked"]:
        return
    with DebugLink(record["debug_port"]) as dl:
        if not info["initialized"]:
            if not mnemonic:
                return  # left at the setup screen, for the officer (or a test) to drive
            # Typed in as an officer would, prompt by prompt.
            dl.wait_screen("setup_mnemonic")
            dl.type_text(mnemonic)
            screen = dl.wait_screen(("setup_pin", "setup_mnemonic"))
            if screen["screen"] == "setup_mnemonic":
                raise EmulatorError("the device refused the mnemonic: " + (screen.get("error") or ""))
            dl.type_text(pin)
            dl.wait_screen("setup_pin_confirm")
            dl.type_text(pin)
            dl.wait_screen("setup_passphrase")
            dl.type_text(passphrase)
        else:
            dl.wait_screen("unlock_pin")
            dl.type_text(pin)
        _wait_ready(record, dl, passphrase)


def _wait_ready(record, dl, passphrase):
    """Answer the passphrase prompt if one comes; fail on a refused PIN."""
    with Client(record["port"]) as c:
        for _ in range(400):
            screen = dl.screen()
            if screen is None:
                if not c.info()["locked"]:
                    return
            elif screen["screen"] == "unlock_passphrase":
                if screen.get("error"):
                    raise EmulatorError(f"the emulator refused the passphrase: {screen['error']}")
                dl.type_text(passphrase)
            elif screen["screen"] == "setup_check":
                dl.approve()  # the launcher's caller chose the words and passphrase
            elif screen["screen"] == "unlock_pin" and screen.get("error"):
                raise EmulatorError(f"the emulator refused the PIN: {screen['error']}")
            elif screen["screen"].startswith("setup_"):
                raise EmulatorError("the emulator erased its seed after too many wrong PINs")
            time.sleep(0.05)
    raise EmulatorError("the emulator did not unlock")


def stop(state) -> bool:
    """Stop the emulator on `state`; False if none was running."""
    state = Path(state).resolve()
    try:
        rec = json.loads(_record_path(state).read_text())
    except (OSError, ValueError):
        rec = {}
    pid = rec.get("pid", -1)
    running = discovery.state_locked(state)
    try:
        if running and pid > 0:
            _signal_group(pid, signal.SIGTERM)
            for _ in range(100):
                _reap(pid)
                if not discovery.state_locked(state):
                    break
                time.sleep(0.05)
            else:
                _signal_group(pid, signal.SIGKILL)
                time.sleep(0.1)
                _reap(pid)
    finally:
        _record_path(state).unlink(missing_ok=True)
        if pid > 0:
            (discovery.registry_dir() / f"{pid}.json").unlink(missing_ok=True)
    return running


def _signal_group(pid: int, sig) -> None:
    # Only the emulator's own process group: the lock proved it is ours.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait(state) -> None:
    """Block while the emulator on `state` runs (foreground mode)."""
    rec = read_record(state)
    if not rec:
        return
    try:
        os.waitpid(rec["pid"], 0)
    except ChildProcessError:
        while discovery.state_locked(Path(state).resolve()):
            time.sleep(0.5)

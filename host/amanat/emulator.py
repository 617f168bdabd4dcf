"""Start and stop emulated devices (docs/architecture.md, "Emulator";
docs/qemu.md). Two targets, driven the same way once started:

- "unix": the firmware under the MicroPython unix port. The device process
  gets the master side of each pty as stdin/stdout (serial) and stderr
  (DebugLink), non-blocking; its flash is STATE/flash.img, a file.
- "qemu": the firmware frozen into a Cortex-M3 image under QEMU
  (boards/qemu). QEMU gets the masters as its first two UARTs; a third pty
  is its monitor, through which `stop` saves the flash region to
  STATE/flash.img before QEMU quits. The firmware is started through the
  port's raw REPL.

Either way the device process also inherits the slave sides, which it never
uses: holding them open keeps the ptys alive while no host is connected.
"""

import fcntl
import json
import os
import select
import signal
import subprocess
import time
import tty
from pathlib import Path

from . import discovery, mpy, paths
from .framing import LINE_BAUD
from .client import Client
from .debuglink import DebugLink
from .errors import AmanatError, TransportError

NETWORKS = ("main", "test", "signet", "regtest")
TARGETS = ("unix", "qemu")
# The emulator's PIN when none is given. The emulator is never for real keys.
DEFAULT_PIN = "123456"
START_TIMEOUT = 30.0
# boards/qemu: the flash region (board.py) and the random seed's address (hal.c).
QEMU_FLASH_ADDR = 0x21000000
QEMU_FLASH_SIZE = 4 * 1024 * 1024
QEMU_SEED_ADDR = 0x21400000
QEMU_DEVICE_KEY_ADDR = 0x21400020  # boards/qemu/board.py: STATE/device.key
QEMU_HEAP = 131072


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
          heap=None, pin=DEFAULT_PIN, target="unix", baud=None, measure_heap=False, unlock=True,
          fast_clock=False, trail_kib=None) -> dict:
    """Start an emulator on `state`; return {"port", "debug_port", "pid", "state",
    "target", "fingerprint", "network", "locked"} once it answers (fingerprint None while
    it waits at setup or is locked) (set up with `mnemonic` on first start: BIP39
    words, or a list of SLIP39 shares; unlocked
    with `pin` unless `unlock` is False: then a set-up device waits at its PIN
    prompt). `baud` paces its serial line like a UART; `measure_heap` has
    `info` report the heap's peak during signing; `fast_clock` makes PIN
    delays 100 times shorter; `trail_kib` bounds its audit trail to that
    many KiB instead of the board's 1 MiB (tests of a full trail)."""
    state = Path(state).resolve()
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise EmulatorError("a PIN is 4 to 12 digits")  # checked before anything starts
    if network not in NETWORKS:
        raise EmulatorError(f"network must be one of {', '.join(NETWORKS)}")
    if target not in TARGETS:
        raise EmulatorError(f"target must be one of {', '.join(TARGETS)}")
    if baud is not None and baud < LINE_BAUD:
        # A frame is given the time its length takes at the protocol's rate.
        raise EmulatorError(f"baud must be at least {LINE_BAUD}, the protocol's line rate")
    settings = {"network": network, "auto_confirm": bool(auto_confirm), "measure_heap": bool(measure_heap),
                "baud": int(baud or 0), "fast_clock": bool(fast_clock), "trail_kib": int(trail_kib or 0)}
    try:
        spawn = _spawn_qemu(heap) if target == "qemu" else _spawn_unix(heap)
    except FileNotFoundError as e:
        raise EmulatorError(str(e)) from None
    state.mkdir(parents=True, exist_ok=True)
    # The device process inherits this locked descriptor: the lock lives
    # exactly as long as the emulator, whatever happens to pids and records.
    lock = os.open(state / discovery.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise EmulatorError(f"an emulator is already running on {state}") from None
    ptys = [_pty() for _ in range(3 if target == "qemu" else 2)]
    try:
        # (the process, what starts the firmware in it or None, what to do once it answers or None)
        proc, boot, started = spawn(state, ptys, lock, settings)
    finally:
        for m, s, _ in ptys:
            os.close(m)
            os.close(s)
        os.close(lock)
    record = {"port": ptys[0][2], "debug_port": ptys[1][2], "pid": proc.pid, "state": str(state),
              "target": target}
    if target == "qemu":
        record["monitor"] = ptys[2][2]
    _record_path(state).write_text(json.dumps(record))
    reg = discovery.registry_dir()
    reg.mkdir(parents=True, exist_ok=True)
    (reg / f"{proc.pid}.json").write_text(json.dumps(record))
    try:
        if boot:
            boot(proc, record)
        _bring_up(proc, record, mnemonic, passphrase, pin if unlock else None)
        if started:
            started()
        with Client(record["port"]) as c:  # what the officer checks: this seed, this network
            i = c.info()
        record["fingerprint"] = bytes(i["fingerprint"]).hex() if i.get("fingerprint") else None
        record["network"] = i.get("network")
        record["locked"] = i["locked"]
        _record_path(state).write_text(json.dumps(record))
        (reg / f"{proc.pid}.json").write_text(json.dumps(record))
    except BaseException:
        stop(state)
        raise
    return record


def _spawn_unix(heap):
    cmd = [paths.micropython_bin()]
    if heap:
        cmd += ["-X", f"heapsize={int(heap)}"]
    cmd.append(str(paths.firmware_dir() / "main.py"))

    def spawn(state, ptys, lock, settings):
        (m1, s1, _), (m2, s2, _) = ptys
        env = dict(
            os.environ,
            MICROPYPATH=mpy.import_path([paths.board_dir("unix")]),
            AMANAT_STATE=str(state),
            AMANAT_NETWORK=settings["network"],
            AMANAT_AUTO_CONFIRM="1" if settings["auto_confirm"] else "0",
            AMANAT_MEASURE_HEAP="1" if settings["measure_heap"] else "0",
            AMANAT_BAUD=str(settings["baud"]),
            AMANAT_FAST_CLOCK="1" if settings["fast_clock"] else "0",
            AMANAT_TRAIL_KIB=str(settings["trail_kib"] or ""),
        )
        proc = subprocess.Popen(cmd, stdin=m1, stdout=m1, stderr=m2, pass_fds=(s1, s2, lock),
                                cwd=state, env=env, start_new_session=True)
        return proc, None, None

    return spawn


def _spawn_qemu(heap):
    if heap is not None and not 0 < heap <= QEMU_HEAP:
        raise EmulatorError(f"the QEMU target's heap is at most {QEMU_HEAP} bytes")
    qemu, image = paths.qemu_bin(), paths.qemu_image()  # FileNotFoundError says what to do

    def spawn(state, ptys, lock, settings):
        flash = state / "flash.img"
        cmd = _qemu_command(qemu, image, ptys) + [
            "-serial", "chardev:pty0", "-serial", "chardev:pty1",
            # The board sends its whole trail at boot: screens.jsonl starts empty.
            "-chardev", "file,id=audit,path=screens.jsonl", "-serial", "chardev:audit",
            "-chardev", "file,id=log,path=device.log,append=on", "-serial", "chardev:log",
            "-monitor", "chardev:pty2"]
        if flash.exists():
            if flash.stat().st_size != QEMU_FLASH_SIZE:
                raise EmulatorError(f"{flash} is not a {QEMU_FLASH_SIZE}-byte flash image")
            cmd += ["-device", f"loader,file={flash.name},addr={QEMU_FLASH_ADDR:#x},force-raw=on"]
        seed = os.urandom(32)
        for i in range(4):  # os.urandom's seed on the device (boards/qemu/hal.c)
            cmd += ["-device", f"loader,addr={QEMU_SEED_ADDR + 8 * i:#x},"
                               f"data={int.from_bytes(seed[8 * i:8 * i + 8], 'little'):#x},data-len=8"]
        key = state / "device.key"  # the eFuse key's stand-in: beside the flash image, never in it
        if not key.exists() or key.stat().st_size != 32:
            key.write_bytes(os.urandom(32))
        cmd += ["-device", f"loader,file={key.name},addr={QEMU_DEVICE_KEY_ADDR:#x},force-raw=on"]
        trail = _read(state / "screens.jsonl")
        fds = [fd for m, s, _ in ptys for fd in (m, s)] + [lock]
        with open(state / "qemu.log", "wb") as log:  # QEMU's own messages (its NIC has no network)
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=fds,
                                    cwd=state, start_new_session=True)
        code = f"import board\nboard.boot(**{dict(settings, heap=int(heap or 0))!r})\n"

        def boot(proc, record):
            repl = _RawRepl(proc, record["port"], lambda: _device_log(state))
            try:
                repl.send(code)  # the firmware has the line from here on
            finally:
                repl.close()

        def started():
            _keep_lost_records(state, trail)

        return proc, boot, started

    return spawn


def _qemu_command(qemu, image, ptys):
    """QEMU on the image, each pty master (inherited) as chardev ptyN."""
    cmd = [qemu, "-machine", "mps2-an385", "-nodefaults", "-display", "none", "-semihosting", "-kernel", str(image)]
    for i, (m, _, _) in enumerate(ptys):
        cmd += ["-add-fd", f"fd={m},set={i + 1}", "-chardev", f"serial,id=pty{i},path=/dev/fdset/{i + 1}"]
    return cmd


class _RawRepl:
    """MicroPython's raw REPL on a pty: Ctrl-A, then code and Ctrl-D for
    each run, as mpremote does."""

    def __init__(self, proc, port, log):
        self.proc = proc
        self.log = log  # what to say when QEMU has gone
        self.buf = b""
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        os.write(self.fd, b"\r\x01")
        self.expect(b"raw REPL; CTRL-B to exit\r\n>")

    def send(self, code):
        """Hand `code` to the device; return once it took it ("OK")."""
        os.write(self.fd, code.encode() + b"\x04")
        self.expect(b"OK")

    def expect(self, token, timeout=START_TIMEOUT) -> bytes:
        """What comes before `token` (which is consumed)."""
        deadline = time.monotonic() + timeout
        while token not in self.buf:
            if self.proc.poll() is not None:
                raise EmulatorError(f"QEMU exited ({self.proc.returncode}): {self.log()}")
            if time.monotonic() > deadline:
                raise EmulatorError(f"the QEMU image did not say {token!r} (it said {self.buf[-200:]!r})")
            if select.select([self.fd], [], [], 0.1)[0]:
                self.buf += os.read(self.fd, 65536)
        before, self.buf = self.buf.split(token, 1)
        return before

    def close(self):
        os.close(self.fd)


class QemuRepl:
    """The QEMU image with no firmware started: code run on the target
    itself (the QEMU tests' import checks and crypto vectors)."""

    def __init__(self):
        pty = _pty()
        cmd = _qemu_command(paths.qemu_bin(), paths.qemu_image(), [pty]) + ["-serial", "chardev:pty0"]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, pass_fds=pty[:2], start_new_session=True)
        finally:
            os.close(pty[0])
            os.close(pty[1])
        self.repl = _RawRepl(self.proc, pty[2], lambda: self.proc.stderr.read().decode(errors="replace"))

    def exec(self, code, timeout=300.0) -> str:
        """Run `code`; what it printed, or EmulatorError with its traceback."""
        self.repl.send(code)
        out = self.repl.expect(b"\x04", timeout)
        err = self.repl.expect(b"\x04>", timeout)
        if err:
            raise EmulatorError("on the QEMU image: " + err.decode(errors="replace"))
        return out.decode().replace("\r\n", "\n")

    def close(self):
        self.repl.close()
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read(path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _keep_lost_records(state, old):
    """screens.jsonl is rewritten from the device's flash at each start. Records
    the flash no longer holds (QEMU was killed, not stopped, so its flash was
    not saved) are kept in screens.lost.jsonl."""
    if old and not _read(state / "screens.jsonl").startswith(old):
        with open(state / "screens.lost.jsonl", "ab") as f:
            f.write(old)


def _device_log(state) -> str:
    """The tail of the device's log (and of QEMU's own, for that target)."""
    return "".join(_read(Path(state) / name).decode(errors="replace")[-2000:]
                   for name in ("device.log", "qemu.log"))


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
            dl.wait_screen("setup_create")
            dl.reject()  # restore, not create: the words (or shares) are given
            dl.wait_screen("setup_kind")
            if isinstance(mnemonic, (list, tuple)):  # SLIP39 shares
                dl.approve()
                for share in mnemonic:
                    screen = dl.wait_screen(("setup_share", "setup_pin"))
                    if screen["screen"] == "setup_pin":
                        break  # enough shares
                    if screen.get("error"):
                        raise EmulatorError("the device refused a share: " + screen["error"])
                    dl.type_text(share)
                screen = dl.wait_screen(("setup_pin", "setup_share"))
                if screen["screen"] == "setup_share":
                    raise EmulatorError("the device wants more shares" + (": " + screen["error"] if screen.get("error")
                                                                          else ""))
            else:
                dl.reject()
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
            screen = dl.wait_screen(("unlock_pin", "seed_damaged", "pin_wait"))
            if screen["screen"] == "seed_damaged":
                raise EmulatorError("the device cannot open its stored seed: " + " ".join(screen["lines"][:1]))
            if pin is None:
                return  # left locked, at its PIN prompt (amanat emulator unlock)
            _type_pin(dl, pin)
        _wait_ready(record, dl, passphrase)


def _type_pin(dl, pin):
    """Type `pin` at the PIN prompt, once the device's delay after earlier
    wrong PINs (a pin_wait screen) has passed; the prompt it answered."""
    while True:
        screen = dl.wait_screen(("unlock_pin", "pin_wait"), timeout=300)
        if screen["screen"] == "unlock_pin":
            dl.type_text(pin)
            return screen
        time.sleep(0.05)


def unlock(state, pin, passphrase="") -> dict:
    """Type `pin` into the locked emulator on `state` (DebugLink), as an
    officer does: {"outcome": "unlocked" | "wrong" | "wiped", "left": attempts
    left, "delay_s": the wait before the next try}."""
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise EmulatorError("a PIN is 4 to 12 digits")
    record = read_record(state)
    if record is None:
        raise EmulatorError(f"no emulator running on {state}")
    with Client(record["port"]) as c:
        if not c.info()["initialized"]:
            raise EmulatorError("the emulator is not set up: nothing to unlock")
        if not c.info()["locked"]:
            return {"outcome": "unlocked", "left": None, "delay_s": 0}
    with DebugLink(record["debug_port"]) as dl:
        typed_at = _type_pin(dl, pin)  # the prompt answered: a new one is the outcome
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            screen = dl.screen()
            with Client(record["port"]) as c:
                i = c.info()
            if not i["locked"]:
                return {"outcome": "unlocked", "left": None, "delay_s": 0}
            if not i["initialized"]:
                return {"outcome": "wiped", "left": 0, "delay_s": 0}
            if screen is not None and screen["screen"] == "unlock_passphrase":
                dl.type_text(passphrase)
            elif screen is not None and screen["screen"] in ("unlock_pin", "pin_wait") and screen != typed_at:
                return {"outcome": "wrong", "left": screen["left"], "delay_s": screen.get("seconds", 0)}
            time.sleep(0.05)
    raise EmulatorError("the emulator did not answer the PIN")


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
            elif screen["screen"] == "pin_wait":
                raise EmulatorError(f"the emulator refused the PIN: {'; '.join(screen['lines'])}")
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
        if running and rec.get("monitor"):
            _qemu_save_and_quit(state, rec["monitor"])
            _reap(pid)
        if discovery.state_locked(state) and pid > 0:
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


def _qemu_save_and_quit(state, monitor):
    """Pause the device, save its flash region to STATE/flash.img (written
    aside, then renamed) and quit QEMU, through its monitor."""
    new = state / "flash.img.new"
    new.unlink(missing_ok=True)
    try:
        fd = os.open(monitor, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.write(fd, f"stop\npmemsave {QEMU_FLASH_ADDR:#x} {QEMU_FLASH_SIZE} {new.name}\nquit\n".encode())
        deadline = time.monotonic() + 10
        while discovery.state_locked(state) and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    os.read(fd, 4096)  # the monitor's echo, so that it never waits on us
                except OSError:
                    break  # QEMU has gone
    finally:
        os.close(fd)
    if new.exists() and new.stat().st_size == QEMU_FLASH_SIZE:
        os.replace(new, state / "flash.img")


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

"""Finding devices: ESP32 boards on USB serial ports, and running emulators.

Emulators register themselves in a folder (AMANAT_EMULATOR_REGISTRY, or
~/.cache/amanat/emulators) when they start and are removed when they stop;
stale entries (no emulator holds the state folder's lock) are skipped and
cleaned up.
"""

import fcntl
import json
import os
from pathlib import Path

# Held (flock) by a running emulator's process for its whole life.
LOCK_NAME = "lock"

# USB-serial bridges found on ESP32 boards, and Espressif's own USB.
USB_IDS = {(0x10C4, 0xEA60), (0x1A86, 0x7523), (0x1A86, 0x55D4), (0x0403, 0x6001)}
ESPRESSIF_VID = 0x303A


def registry_dir() -> Path:
    env = os.environ.get("AMANAT_EMULATOR_REGISTRY")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "amanat" / "emulators"


def state_locked(state: Path) -> bool:
    """True while an emulator runs on `state` (it holds the folder's lock)."""
    try:
        fd = os.open(Path(state) / LOCK_NAME, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops a lock we just took
    return False


def running_emulators() -> list[dict]:
    """[{"port", "debug_port", "pid", "state"}] of live emulators."""
    out = []
    d = registry_dir()
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            entry = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if entry.get("state") and state_locked(Path(entry["state"])):
            out.append(entry)
        else:
            f.unlink(missing_ok=True)
    return out


def usb_candidates() -> list[str]:
    from serial.tools import list_ports

    ports = []
    for p in list_ports.comports():
        if p.vid is None:
            continue
        if (p.vid, p.pid) in USB_IDS or p.vid == ESPRESSIF_VID:
            ports.append(p.device)
    return ports


def _known_path(port: str) -> Path:
    return registry_dir() / "known" / (port.strip("/").replace("/", "_") + ".json")


def remember(port: str, info: dict) -> None:
    """Keep what a device on `port` said about itself (fingerprint, network,
    model), so that it can be listed while another program holds it busy."""
    fp = info.get("fingerprint")
    entry = {"port": port, "fingerprint": bytes(fp).hex() if fp else None, "network": info.get("network"),
             "model": info.get("model"), "initialized": bool(info.get("initialized"))}
    path = _known_path(port)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache: a read-only home costs only the busy listing


def known(port: str) -> dict | None:
    """What remember() last kept for `port`, or None."""
    try:
        return json.loads(_known_path(port).read_text())
    except (OSError, ValueError):
        return None


def find_devices(include_emulators: bool) -> list[str]:
    """Serial ports of Amanat devices. USB candidates are asked `info`; those
    that answer in the protocol are listed, and those held busy by another
    program (their port is locked) too."""
    from .client import Client
    from .errors import AmanatError, DeviceBusyError

    ports = []
    for port in usb_candidates():
        try:
            with Client(port, timeout=1.5):
                ports.append(port)
        except DeviceBusyError:
            ports.append(port)
        except AmanatError:
            continue
    if include_emulators:
        ports += [e["port"] for e in running_emulators()]
    return ports

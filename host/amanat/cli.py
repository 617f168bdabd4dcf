"""`amanat`: the officer's and developer's command line.

Exit codes (for scripts; README.md has the table, tests/host/test_exit_codes.py
walks it): 0 done; 1 other error; 2 usage; 3 no device or the line failed;
4 the officer rejected on the device (or the command was interrupted: 130
Ctrl-C, 143 SIGTERM); 5 refused by the device (a review rule, a bad PSBT or
parameter, or beyond the limits it publishes); 6 a signature did not verify
on the host; 7 the device is not set up, locked or busy; 8 an input given
here is missing or malformed (file, PSBT, descriptor, wallet file), found
before anything reaches a device.
"""

import base64
import binascii
import json
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from .errors import (AmanatError, DeviceBusyError, DeviceError, LimitError, PsbtError, SignatureError,
                     TransportError)

console = Console()
err_console = Console(stderr=True)

EXIT_DEVICE_MISSING = 3
EXIT_REJECTED = 4
EXIT_REFUSED = 5
EXIT_BAD_SIGNATURE = 6
EXIT_NOT_READY = 7
EXIT_BAD_INPUT = 8


class CliError(click.ClickException):
    """A one-line error for people; no traceback."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def _fail(e: AmanatError):
    code = 1
    if isinstance(e, DeviceBusyError):
        code = EXIT_NOT_READY
    elif isinstance(e, TransportError):
        code = EXIT_DEVICE_MISSING
    elif isinstance(e, SignatureError):
        code = EXIT_BAD_SIGNATURE
    elif isinstance(e, LimitError):
        code = EXIT_REFUSED
    elif isinstance(e, PsbtError):  # the host could not read, combine or finalize it
        code = EXIT_BAD_INPUT
    elif isinstance(e, DeviceError):
        code = {"REJECTED": EXIT_REJECTED, "REFUSED": EXIT_REFUSED, "BAD_PSBT": EXIT_REFUSED,
                "BAD_PARAMS": EXIT_REFUSED, "NOT_READY": EXIT_NOT_READY, "BUSY": EXIT_NOT_READY}.get(e.name, 1)
    raise CliError(str(e) if isinstance(e, DeviceError) else e.message, code) from None


def _connect(port):
    from .client import Client

    port = port or _chosen_port()
    try:
        c = Client(port)
    except AmanatError as e:
        _fail(e)
    c.on_prompt = lambda prompt: _show_prompt(prompt, {}, err_console)
    return c


def _chosen_port() -> str:
    """The port of the device --state or --fingerprint names, or of the only one found."""
    from .discovery import find_devices

    ctx = click.get_current_context(silent=True)
    chosen = ctx.meta.get("amanat.select", {}) if ctx else {}
    state, fp = chosen.get("state_dir"), chosen.get("fingerprint")
    if state:
        from . import emulator as emu

        rec = emu.read_record(state)
        if not rec:
            raise CliError(f"no emulator running on {state}", EXIT_DEVICE_MISSING)
        return rec["port"]
    found = find_devices(include_emulators=True)
    if fp:
        found = [p for p in found if _fingerprint_of(p) == fp.lower()]
        if not found:
            raise CliError(f"no Amanat device with fingerprint {fp} found", EXIT_DEVICE_MISSING)
    if not found:
        raise CliError("no Amanat device found: connect one, start an emulator, or give --port",
                       EXIT_DEVICE_MISSING)
    if len(found) > 1:
        raise CliError("several devices found (%s): choose one with --port, --fingerprint or --state"
                       % ", ".join(found), EXIT_DEVICE_MISSING)
    return found[0]


def _fingerprint_of(port: str) -> str | None:
    from .client import Client
    from .discovery import known

    try:
        with Client(port, timeout=2.0) as c:
            fp = c.info().get("fingerprint")
            return bytes(fp).hex() if fp else None
    except DeviceBusyError:
        return (known(port) or {}).get("fingerprint")  # busy: it says so when chosen
    except AmanatError:
        return None


@contextmanager
def _device(port):
    """A connected client; any AmanatError inside becomes a one-line CLI error."""
    c = _connect(port)
    sign = False  # a session that changed the trail ends with a checkpoint, unless the line is gone
    try:
        yield c
        sign = True
    except AmanatError as e:
        sign = not isinstance(e, TransportError)
        _fail(e)
    finally:
        c.close(checkpoint=sign)


def _select(ctx, param, value):
    if value is not None:
        ctx.meta.setdefault("amanat.select", {})[param.name] = value


def port_option(f):
    """--port, --fingerprint and --state: which device a command talks to."""
    f = click.option("--state", "state_dir", expose_value=False, callback=_select, metavar="DIR",
                     help="The emulator running on this state folder.")(f)
    f = click.option("--fingerprint", expose_value=False, callback=_select, metavar="FP",
                     help="The device with this master key fingerprint (8 hex digits).")(f)
    return click.option("--port", envvar="AMANAT_PORT",
                        help="Serial port of the device (default: the only one found).")(f)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _emit_json(obj):
    click.echo(json.dumps(obj, sort_keys=True))


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: any prompt is taken off the device first."""


def _terminate(signum, frame):
    raise Terminated()


class _Main(click.Group):
    """The command group; an interrupted command ends with one line saying what
    became of it (the client has cancelled any prompt on the device)."""

    def invoke(self, ctx):
        signal.signal(signal.SIGTERM, _terminate)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            how, code = ("SIGTERM", 143) if isinstance(e, Terminated) else ("Ctrl-C", 130)
            raise CliError(f"interrupted ({how}): any prompt of this command was taken off the device "
                           "screen; nothing was signed or written", code) from None


@click.group(cls=_Main)
@click.version_option(package_name="amanat")
def main():
    """Amanat: air-gapped Bitcoin signing device, host tools."""


@main.command()
def demo():
    """Run the main job end to end and print what happened."""
    from . import demo as demo_mod

    try:
        demo_mod.run(console)
    except Exception as e:  # one clear line, exit 1
        raise CliError(f"demo failed: {e}") from e


@main.command()
@click.option("--device-crypto", is_flag=True, help="Time the device crypto under MicroPython vs libsecp256k1.")
@click.option("--emulator", "emu", is_flag=True, help="Time signing through an emulator and find the smallest heap.")
@click.option("--memory", is_flag=True,
              help="Heap peak, time per input and transfer for PSBTs of 10 to 1000 inputs, on QEMU and unix.")
@click.option("--native", is_flag=True,
              help="The host's native path: raw libsecp256k1 rates, embit's sign_with, psbt verify and psbt sign, the device per input.")
@click.option("--heap", type=int, default=None, help="Cap the MicroPython heap (bytes) for --device-crypto.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def bench(device_crypto, emu, memory, native, heap, as_json):
    """Print measured speed and memory figures."""
    if not (device_crypto or emu or memory or native):
        raise CliError("choose what to measure: --device-crypto, --emulator, --memory and/or --native", 2)
    report = {}
    if device_crypto:
        report["device_crypto"] = _bench_crypto(heap, as_json)
    if emu:
        report["emulator"] = _bench_emulator(as_json)
    if memory:
        report["memory"] = _bench_memory(as_json)
    if native:
        from . import bench_native

        report["native"] = bench_native.report(say=(lambda s: None) if as_json else console.print)
    if as_json:
        click.echo(json.dumps(report, indent=1))


def _bench_crypto(heap, quiet):
    from . import bench as bench_mod

    rows = bench_mod.device_crypto_report(heap)
    if quiet:
        return rows
    table = Table("operation", "device (µs)", "libsecp256k1 / CPython (µs)", "ratio", "target (µs)", "ok")
    for r in rows:
        ok = "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO")
        table.add_row(
            r["op"],
            f"{r['device_us']:,}",
            f"{r['libsecp256k1_us']:,}",
            f"{r['ratio']}x" if r["ratio"] else "",
            f"{r['target_us']:,}" if r["target_us"] else "",
            ok,
        )
    console.print("Device crypto on the MicroPython unix port (portable backend), same run:")
    console.print(table)
    return rows


def _bench_emulator(quiet):
    from . import bench_emulator as be

    rows = be.signing_report()
    heap = be.smallest_heap()
    if quiet:
        return {"signing": rows, "smallest_heap_20_inputs": heap}
    table = Table("wallet", "inputs", "PSBT bytes", "upload ms", "device ms (review+sign)", "download ms",
                  "total ms", "host verify ms")
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("kind", "inputs", "bytes", "upload_ms", "device_ms", "download_ms",
                                            "total_ms", "host_verify_ms")))
    console.print("Signing through the emulator's pty (single-sig: mixed P2PKH/P2SH-P2WPKH/P2WPKH/P2TR inputs):")
    console.print(table)
    console.print(f"smallest MicroPython heap that signs a 20-input PSBT: {heap:,} bytes" if heap
                  else "a 20-input PSBT does not sign within 1,000,000 bytes of heap")
    return {"signing": rows, "smallest_heap_20_inputs": heap}


def _bench_memory(quiet):
    from . import bench_memory as bm

    rep = bm.report(say=(lambda s: None) if quiet else (lambda s: console.print(Text(s), style="dim")))
    if quiet:
        return rep
    for t in rep["targets"]:
        console.print(f"{t['target']}: heap {t['heap_size']:,} bytes, {t['free_after_boot']:,} free after boot, "
                      f"{t['free_after_imports']:,} after imports")
        table = Table("case", "inputs", "outputs", "PSBT bytes", "peak heap", "upload s", "device s", "ms/input",
                      "download s", "upload bytes / PSBT")
        for r in t["cases"]:
            table.add_row(r["case"], str(r["inputs"]), str(r["outputs"]), f"{r['bytes']:,}", f"{r['peak']:,}",
                          str(r["upload_s"]), str(r["device_s"]), str(r["ms_per_input"]), str(r["download_s"]),
                          str(r["wire_ratio"]))
        console.print(table)
        for name, c in t["checks"].items():
            console.print(f"  {name}: {c['value']:,} (bound {c['bound']:,}) {'ok' if c['ok'] else 'NOT MET'}")
    table = Table("target", "inputs", "PSBT bytes", "baud", "upload s", "download s", "device s")
    for r in rep["transfer"]:
        table.add_row(r["target"], str(r["inputs"]), f"{r['bytes']:,}", str(r["baud"]), str(r["upload_s"]),
                      str(r["download_s"]), str(r["device_s"]))
    console.print("Transfer over a paced line:")
    console.print(table)
    h = rep["unix_headroom"]
    if h and h["smallest_10"]:
        console.print(f"unix: smallest heap that signs 10 inputs {h['smallest_10']:,} bytes; "
                      f"with {h['headroom']:,} more, 1000 inputs {'sign' if h['signs_1000'] else 'DO NOT sign'}"
                      + (" (the emulator did not boot: the unix port compiles the firmware from source, and "
                         "that compile fails near this size; QEMU's frozen image is the reference)"
                         if h.get("failed") == "boot" else ""))
    return rep


@main.group()
def emulator():
    """Run emulated devices (the firmware under MicroPython, serial over a pty)."""


@main.group()
def device():
    """The seed's lifecycle on the device: PIN, backup check, wipe (the officer works on the device)."""


def _on_device(port, what, call):
    with _device(port) as c:
        err_console.print(what)
        c.on_prompt = lambda prompt: _show_prompt(prompt, {}, err_console)
        try:
            return call(c)
        except AmanatError as e:
            _fail(e)


def _follow_setup(port, steps, as_json):
    """Tell the officer what to answer on a device that waits at its setup,
    print each yes/no screen it shows, and report the outcome once it is
    set up. The device does the work; nothing secret comes to the host."""
    import time

    with _device(port) as c:
        info = c.info()
        if info["initialized"]:
            fp = bytes(info["fingerprint"]).hex() if info.get("fingerprint") else "locked"
            raise CliError(f"the device is already set up ({fp}); `amanat device wipe` first", EXIT_BAD_INPUT)
        err_console.print("On the device:")
        for step in steps:
            err_console.print(Text("  " + step))
        last = None
        while True:
            info = c.info()
            if info["initialized"] and not info["locked"]:
                break
            shown = c.t.call("prompt").get("prompt")
            if shown and shown != last:
                err_console.print(Text(f"device: {shown['title']}: " + " / ".join(shown["lines"])))
            last = shown
            time.sleep(0.3)
    fp = bytes(info["fingerprint"]).hex()
    if as_json:
        _emit_json({"fingerprint": fp, "network": info["network"]})
    else:
        click.echo(f"set up: fingerprint {fp}, network {info['network']}; write the fingerprint in the record")


@device.command("setup")
@click.option("--words", type=click.Choice(["12", "24"]), default="24", show_default=True,
              help="Length of the new seed (24 words: 256 bits).")
@click.option("--dice", is_flag=True, help="Add die rolls to the device's randomness (at least 50 or 99).")
@click.option("--slip39", metavar="M-of-N", help="Back the new seed up as SLIP39 shares, M of N recovering it.")
@port_option
@json_option
def device_setup(words, dice, slip39, port, as_json):
    """Set up a new device: it creates the seed itself; this says what to
    answer on it, follows it and reports the fingerprint."""
    shape = None
    if slip39:
        try:
            m, n = (int(x) for x in slip39.lower().split("-of-"))
        except ValueError:
            raise CliError("--slip39 is M-of-N, for example 3-of-5", 2) from None
        if not 2 <= m <= n <= 16:
            raise CliError("--slip39: 2 <= M <= N <= 16", 2)
        shape = (m, n)
    steps = ["Set up: Create a new seed on this device? approve",
             f"New seed: 24 words? {'approve' if words == '24' else 'reject (12 words)'}",
             "Back it up as SLIP39 shares? " + (f"approve; {shape[1]} shares, {shape[0]} recover it" if shape
                                                else "reject"),
             "Add dice rolls? " + ("approve, then type each roll" if dice else "reject"),
             "write down each page of words, then type back the words it asks for",
             "choose the PIN (twice), the passphrase if the institution uses one, and check the fingerprint"]
    _follow_setup(port, steps, as_json)


@device.command("recover")
@click.option("--slip39", is_flag=True, help="From SLIP39 shares (else the BIP39 recovery words).")
@port_option
@json_option
def device_recover(slip39, port, as_json):
    """Restore a new device from its backup, typed on the device; this says
    what to answer on it, follows it and reports the fingerprint."""
    steps = ["Set up: Create a new seed on this device? reject",
             "Recover from SLIP39 shares? " + ("approve, then type each share (any order)" if slip39
                                               else "reject, then type the recovery words"),
             "choose the PIN (twice), the passphrase if one was used, and check the fingerprint"]
    _follow_setup(port, steps, as_json)


@device.command("change-pin")
@port_option
def device_change_pin(port):
    """Change the PIN: type the current PIN, then the new one twice, on the device."""
    _on_device(port, "On the device: enter the current PIN, then the new PIN twice.", lambda c: c.change_pin())
    click.echo("PIN changed")


@device.command("backup-check")
@port_option
@json_option
def device_backup_check(port, as_json):
    """Check a backup: type the PIN, then the recovery words (or the SLIP39
    shares), on the device; it says whether they are this device's seed."""
    matches = _on_device(port, "On the device: enter the PIN, then the backup's words or shares.",
                         lambda c: c.backup_check())
    if as_json:
        _emit_json({"matches": matches})
    else:
        click.echo("the backup matches this device's seed" if matches else "the backup does NOT match this device's seed")
    if not matches:
        raise SystemExit(1)


@device.command("wipe")
@port_option
def device_wipe(port):
    """Erase the seed and the registered wallets, once confirmed on the device."""
    _on_device(port, "On the device: read the fingerprint and confirm the erase.", lambda c: c.wipe())
    click.echo("the device is erased; it starts its setup")


@emulator.command("start")
@click.option("--state", required=True, type=click.Path(file_okay=False), help="Folder for the flash image and logs.")
@click.option("--target", type=click.Choice(["unix", "qemu"]), default="unix", show_default=True,
              help="unix: the MicroPython unix port; qemu: the frozen Cortex-M3 image under QEMU (make qemu).")
@click.option("--mnemonic", help="BIP39 words typed in on first start.")
@click.option("--share", "shares", multiple=True, help="A SLIP39 share typed in on first start, instead of --mnemonic "
                                                        "(repeat for each share the backup needs).")
@click.option("--passphrase", default="", help="BIP39 passphrase typed in at setup and unlock.")
@click.option("--network", type=click.Choice(["main", "test", "signet", "regtest"]), default="regtest", show_default=True,
              help="Network chosen at setup (a set-up device keeps its own).")
@click.option("--pin", default=None, help="PIN typed in at setup (default: the emulator PIN 123456) and, given, at unlock: "
                                         "without it a set-up device starts locked (amanat emulator unlock).")
@click.option("--auto-confirm", is_flag=True, help="Approve every prompt (tests and scripts).")
@click.option("--heap", type=click.IntRange(1), default=None,
              help="Cap the MicroPython heap, in bytes (qemu: at most its 131072).")
@click.option("--baud", type=click.IntRange(115200), default=None,
              help="Pace the serial line like a UART at this rate (baud/10 bytes a second each way; "
                   "at least 115200, the protocol's line rate).")
@click.option("--measure-heap", is_flag=True, help="Sample the heap in use while signing (info's heap.peak).")
@click.option("--fast-clock", is_flag=True, help="PIN delays 100 times shorter (tests of the delays; no board has this).")
@click.option("--trail-kib", type=click.IntRange(4), default=None,
              help="Bound the audit trail to this many KiB instead of 1024 (to see it fill up).")
@click.option("--detach", is_flag=True, help="Return once the device answers and leave it running.")
def emulator_start(state, target, mnemonic, shares, passphrase, network, pin, auto_confirm, heap, baud, measure_heap,
                   fast_clock, trail_kib, detach):
    """Start an emulator; prints {"port", "debug_port", "pid", "state", "target", "fingerprint", "network",
    "locked"} once it answers (fingerprint null while it waits at setup or is locked)."""
    from . import emulator as emu

    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise CliError("--pin must be 4 to 12 digits", 2)
    if shares and mnemonic:
        raise CliError("give --mnemonic or --share, not both", 2)
    mnemonic = list(shares) if shares else mnemonic

    try:
        rec = emu.start(state, mnemonic=mnemonic, passphrase=passphrase, network=network,
                        auto_confirm=auto_confirm, heap=heap, pin=pin or emu.DEFAULT_PIN, target=target,
                        baud=baud, measure_heap=measure_heap, unlock=pin is not None or mnemonic is not None,
                        fast_clock=fast_clock, trail_kib=trail_kib)
    except AmanatError as e:
        raise CliError(e.message) from None
    except OSError as e:  # e.g. the micropython binary is missing
        raise CliError(f"cannot start the emulator: {e}") from None
    click.echo(json.dumps({k: rec[k] for k in ("port", "debug_port", "pid", "state", "target", "fingerprint",
                                                "network", "locked")}))
    sys.stdout.flush()
    if detach:
        return
    try:
        emu.wait(rec["state"])
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop(rec["state"])


@emulator.command("list")
@json_option
def emulator_list(as_json):
    """The emulators running now: port, state folder, fingerprint, network."""
    from .discovery import running_emulators

    found = [{k: e.get(k) for k in ("port", "debug_port", "pid", "state", "target", "fingerprint", "network")}
             for e in running_emulators()]
    if as_json:
        _emit_json(found)
        return
    t = Table("port", "fingerprint", "network", "target", Column("state", overflow="fold"))
    for e in found:
        t.add_row(Text(e["port"]), str(e["fingerprint"] or "(not set up)"), str(e["network"]), str(e["target"]),
                  Text(e["state"]))
    console.print(t)


@emulator.command("unlock")
@click.option("--state", required=True, type=click.Path(file_okay=False))
@click.option("--pin", required=True, help="The PIN, typed in on the device through DebugLink.")
@click.option("--passphrase", default="", help="The BIP39 passphrase, if the device asks for one.")
def emulator_unlock(state, pin, passphrase):
    """Type a PIN into a locked emulator; prints {"outcome": "unlocked" | "wrong" | "wiped", "left", "delay_s"}
    (exit 7 unless unlocked)."""
    from . import emulator as emu

    try:
        res = emu.unlock(state, pin, passphrase)
    except AmanatError as e:
        raise CliError(e.message) from None
    click.echo(json.dumps(res))
    if res["outcome"] != "unlocked":
        err_console.print(f"PIN {'wrong: ' + str(res['left']) + ' attempts left' if res['outcome'] == 'wrong' else 'wrong: the device erased its seed'}"
                          + (f"; the next try in {res['delay_s']} s" if res.get("delay_s") else ""))
        raise SystemExit(EXIT_NOT_READY)


@emulator.command("stop")
@click.option("--state", required=True, type=click.Path(file_okay=False))
def emulator_stop(state):
    """Stop the emulator running on STATE."""
    from . import emulator as emu

    if not emu.stop(state):
        raise CliError(f"no emulator running on {state}")


def _debuglink(state):
    from . import emulator as emu
    from .debuglink import DebugLink

    rec = emu.read_record(state)
    if not rec:
        raise CliError(f"no emulator running on {state}", EXIT_DEVICE_MISSING)
    try:
        return DebugLink(rec["debug_port"])
    except AmanatError as e:
        _fail(e)


@emulator.command("screen")
@click.option("--state", required=True, type=click.Path(file_okay=False))
@json_option
def emulator_screen(state, as_json):
    """What the emulated device shows now (its DebugLink)."""
    with _debuglink(state) as dl:
        try:
            screen = dl.screen()
        except AmanatError as e:
            _fail(e)
    if as_json:
        _emit_json({"screen": screen})
    elif screen is None:
        click.echo("(nothing waits for an answer)")
    else:
        click.echo(f"[{screen['screen']}] {screen.get('title', '')}")
        for line in screen.get("lines", []):
            click.echo("  " + line)


@emulator.command("press")
@click.argument("button", type=click.Choice(["approve", "reject"]))
@click.option("--state", required=True, type=click.Path(file_okay=False))
def emulator_press(button, state):
    """Press a button of the emulated device, as the officer would."""
    with _debuglink(state) as dl:
        try:
            dl.press(button)
        except AmanatError as e:
            _fail(e)


def _audit_detail(r: dict) -> str:
    name = r.get("screen")
    if name == "review_tx":
        sent = sum(x["amount_sat"] for x in r.get("spends", []))
        wallet = f"wallet {r['wallet']}: " if r.get("wallet") else ""
        return f"{wallet}send {sent / 1e8:.8f} BTC, fee {r.get('fee_sat', 0)} sat, {len(r.get('warnings', []))} warning(s)"
    if name in ("display_address", "wallet_address"):
        return (f"{r.get('wallet', '')} " if r.get("wallet") else "") + r.get("address", "")
    if name == "register_wallet":
        return f"{r.get('name')}: {r.get('policy')}"
    if name == "set_limits":
        return f"{r.get('old')} -> {r.get('new')}"
    if name == "power_loss":
        return f"the record before was cut short by a power loss ({r.get('torn_bytes')} bytes) and not acted on"
    if name == "pin":
        return f"PIN to {r.get('for')}: {r.get('outcome')}"
    if name == "refused":
        return f"{r.get('method')} refused, {r.get('code')}: {r.get('reason')}"
    if name == "checkpoint":
        return f"signed records up to {r.get('covers_seq')} (host time {r.get('host_time')})"
    if name == "boot":
        return f"firmware {r.get('firmware')} on {r.get('board')}"
    if name == "interrupted":
        return f"{r.get('method')} was cut off by a power loss or restart"
    if name == "proof_of_reserves":
        p = r.get("proof") or {}
        return f"{p.get('coins')} coin(s), {p.get('total_sat', 0) / 1e8:.8f} BTC proven, message {p.get('message')!r}"
    if name == "wiped":
        return f"seed erased: {r.get('reason')}"
    return r.get("title", "")


@main.group(invoke_without_command=True)
@click.option("--last", type=click.IntRange(1), default=None, help="Only the last N records.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also save the whole trail, as the device wrote it.")
@click.option("--verify", is_flag=True, help="Exit 1 if the trail's hash chain is broken.")
@port_option
@json_option
@click.pass_context
def audit(ctx, last, output, verify, port, as_json):
    """The device's audit trail: every screen it showed and the answer it got,
    with a check of the hash chain that links its records. `audit key`,
    `audit export` and `audit verify` are the auditor's (docs/audit.md)."""
    from . import audit as audit_mod

    if ctx.invoked_subcommand is not None:
        return
    with _device(port) as c:
        lines = c.audit_lines()
    records = audit_mod.parse(lines)
    for n in audit_mod.torn_lines(lines, records):
        records[n] = {"screen": "(torn by a power loss)", "raw": records[n].get("raw", "")}
    problems = audit_mod.check_chain(lines)
    if output:
        _write_file(output, b"".join(line + b"\n" for line in lines))
    shown = records[-last:] if last else records
    first = len(records) - len(shown)
    if as_json:
        _emit_json({"records": shown, "total": len(records), "chain": {"ok": not problems, "problems": problems}})
    else:
        t = Table("#", "screen", "what", "answer")
        for n, r in enumerate(shown, first + 1):
            t.add_row(str(n), Text(str(r.get("screen"))), Text(_audit_detail(r)), Text(str(r.get("answer"))))
        console.print(t)
        if problems:
            for p in problems:
                err_console.print(Text("hash chain: " + p, style="red"))
        else:
            console.print(f"hash chain intact over {len(records)} records")
    if verify and problems:
        raise CliError(f"the audit trail's hash chain is broken ({len(problems)} problem(s))")


@audit.command("key")
@port_option
@json_option
def audit_key(port, as_json):
    """The device's log key, which signs the trail's checkpoints: shown on
    the device, printed for the auditor's records."""
    with _device(port) as c:
        err_console.print("Compare the key on the device screen and confirm it there.")
        k = c.audit_key()
    if as_json:
        _emit_json(k)
    else:
        click.echo(k["log_key"])
        err_console.print(f"fingerprint {k['fingerprint']}, derived at {k['path']}")


def _verify_report(rep, as_json, extra=None):
    if as_json:
        out = rep.to_dict()
        out.update(extra or {})
        _emit_json(out)
    else:
        t = Table("kind", "records")
        for kind, n in sorted(rep.counts.items()):
            t.add_row(Text(kind), str(n))
        console.print(t)
        console.print(f"records {rep.first_seq} to {rep.last_seq} ({rep.records}), head {rep.head}")
        cp = rep.last_checkpoint
        if cp:
            console.print(f"last checkpoint: record {cp['seq']}, signing records up to {cp['covers_seq']} "
                          f"with log key {cp['key']} (host time {cp['host_time']})")
        else:
            console.print("no valid checkpoint")
        for p in rep.problems:
            err_console.print(Text(p, style="red"), soft_wrap=True)
        if not rep.problems:
            console.print(f"every link and {rep.checkpoints} checkpoint signature(s) verify")
    if rep.problems:
        raise CliError(f"the audit trail does not verify ({len(rep.problems)} problem(s))")


@audit.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Write the trail here (JSON lines).")
@click.option("--free", is_flag=True,
              help="Then have the officer acknowledge the export on the device, which frees the archived records "
                   "(a full trail signs again).")
@port_option
@json_option
def audit_export(output, free, port, as_json):
    """Sign a checkpoint, read the whole trail, verify it under the device's
    log key (and, for the checkpoints of a seed it had before a wipe, the
    log keys the trail's setup records announce) and write it to OUTPUT."""
    from . import audit as audit_mod

    with _device(port) as c:
        c.checkpoint()
        lines = c.audit_lines()
        key = c.info()["trail"].get("log_key")
        if not key:
            raise CliError("the device has no log key (it is not set up)")
        earlier = [k for k in audit_mod.announced_keys(lines) if k != key]
        rep = audit_mod.verify(lines, [bytes.fromhex(k) for k in [key] + earlier])
        _write_file(output, b"".join(line + b"\n" for line in lines))
        freed = None
        if free and not rep.problems:
            err_console.print("Acknowledge the export on the device screen.")
            freed = c.audit_exported(rep.last_seq, rep.head)["freed"]
    if not as_json:
        err_console.print(f"wrote {len(lines)} records to {output}")
        if freed is not None:
            err_console.print(f"the device freed {freed} bytes of exported records")
        if earlier:
            err_console.print(f"earlier seeds' checkpoints checked under the log keys the trail's setup records "
                              f"announce ({', '.join(audit_mod.key_fingerprint(bytes.fromhex(k)) for k in earlier)}): "
                              f"check them against the keys on record (`amanat audit verify --key ...`)")
    _verify_report(rep, as_json, {"output": output, "freed": freed, "log_key": key, "earlier_log_keys": earlier})


@audit.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "keys", multiple=True, required=True, metavar="PUBKEY",
              help="A log key (hex, from `amanat audit key`) the checkpoints must verify under; repeat for several.")
@click.option("--expect", multiple=True, metavar="SEQ:HEAD",
              help="A paper log entry: record SEQ's head hash starts with HEAD (catches a trail cut short).")
@json_option
def audit_verify(files, keys, expect, as_json):
    """Check exported trails offline: every link, the canonical form, every
    checkpoint's signature; FILES in order (successive exports may overlap)."""
    from . import audit as audit_mod

    try:
        pubs = [bytes.fromhex(k) for k in keys]
        if any(len(p) != 33 for p in pubs):
            raise ValueError
    except ValueError:
        raise CliError("--key: a compressed public key, 66 hex digits", EXIT_BAD_INPUT) from None
    try:
        paper = [audit_mod.parse_expect(e) for e in expect]
    except ValueError as e:
        raise CliError(f"--expect {e}", EXIT_BAD_INPUT) from None
    parts = [[line for line in Path(f).read_bytes().split(b"\n") if line] for f in files]
    lines, problems = audit_mod.join(parts)
    rep = audit_mod.verify(lines, pubs, paper)
    rep.problems[:0] = problems
    _verify_report(rep, as_json)


@main.command()
@port_option
@json_option
def info(port, as_json):
    """Show what the device is: firmware, network, fingerprint."""
    with _device(port) as c:
        i = c.info()
    i = dict(i, fingerprint=i["fingerprint"].hex() if i.get("fingerprint") else None, port=c.port)
    if as_json:
        _emit_json(i)
        return
    t = Table(show_header=False)
    for k in ("port", "model", "target", "firmware", "protocol", "network", "initialized", "locked", "fingerprint"):
        t.add_row(k, Text(str(i.get(k))))
    heap, lim = i["heap"], i["limits"]
    t.add_row("heap", f"{heap['size']:,} bytes, {heap['free']:,} free ({heap['free_after_boot']:,} after boot)")
    t.add_row("limits", f"PSBT {lim['psbt_bytes']:,} bytes, {lim['inputs']:,} inputs, {lim['outputs']:,} outputs; "
                        f"{lim['flash_free']:,} bytes of flash free")
    console.print(t)


def _typed_path(ctx, param, text):
    """A BIP32 path as typed (h, H or '), in the h notation the device is sent."""
    from .descriptors import DescriptorError, normalize_path

    try:
        return normalize_path(text)
    except DescriptorError as e:
        raise CliError(e.message, 2) from None


@main.command()
@click.argument("path", callback=_typed_path)
@port_option
@json_option
def xpub(path, port, as_json):
    """Extended public key at PATH (e.g. m/84h/0h/0h; h, H or ' mark hardened steps)."""
    with _device(port) as c:
        x = c.get_xpub(path)
        fp = bytes(c.info()["fingerprint"]).hex()
    origin = f"[{fp}{path[1:]}]{x}"  # the key as descriptors and coordinators take it
    _emit_json({"xpub": x, "path": path, "fingerprint": fp, "key": origin}) if as_json else click.echo(x)


# address type names of the `amanat` CLI -> HWI's (host/amanat/descriptors.py)
ADDRESS_TYPES = {"p2wpkh": "wit", "p2sh-p2wpkh": "sh_wit", "p2pkh": "legacy", "p2tr": "tap"}


@main.command()
@click.argument("index", type=click.IntRange(0, 2**31 - 1), required=False)
@click.option("--type", "kind", type=click.Choice(list(ADDRESS_TYPES)), default="p2wpkh", show_default=True)
@click.option("--account", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--change", is_flag=True, help="An address of the change chain (1) instead of receive (0).")
@click.option("--desc", help="Show the address of this descriptor instead.")
@port_option
@json_option
def address(index, kind, account, change, desc, port, as_json):
    """Show an address of the device's wallet on its screen and print it."""
    from . import descriptors as d

    if desc is None and index is None:
        raise CliError("give an INDEX or --desc", 2)
    with _device(port) as c:
        if desc is None:
            i = c.info()
            addr_type = ADDRESS_TYPES[kind]
            purpose = d.ADDR_TYPES[addr_type][0]
            origin = (purpose + d.HARDENED, d.coin_type(i["network"]) + d.HARDENED, account + d.HARDENED)
            xp = c.get_xpub(d.format_path(origin))
            desc = d.account_descriptor(addr_type, d.Key(i["fingerprint"], origin, xp, (1 if change else 0, index)))
        err_console.print("Check the address on the device screen and confirm it there.")
        addr = c.display_address(desc)
    _emit_json({"address": addr, "descriptor": desc}) if as_json else click.echo(addr)


def _read_psbt(path: str) -> bytes:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}", EXIT_BAD_INPUT) from None
    if data.startswith(b"psbt\xff"):
        return data
    try:
        # base64 as files, mail and `base64` write it: wrapped at 76 columns, CRLF
        raw = base64.b64decode(b"".join(data.split()), validate=True)
    except binascii.Error:
        raise CliError(f"{path}: neither a binary nor a base64 PSBT", EXIT_BAD_INPUT) from None
    if not raw.startswith(b"psbt\xff"):
        raise CliError(f"{path}: not a PSBT (no psbt magic)", EXIT_BAD_INPUT)
    return raw


def _show_prompt(prompt: dict, shown: dict, out: Console) -> None:
    """Print a prompt the device shows, before the officer answers it: what to
    check there, and (with no terminal for a progress bar) what we wait for."""
    shown[prompt["screen"]] = prompt["title"]
    out.print(Text(f"On the device: {prompt['title']}", style="bold"))
    for line in prompt["lines"]:
        out.print(Text("  " + line))  # device text, never rich markup
    if not out.is_terminal:
        out.print(Text("waiting for the officer to approve or reject it on the device"))


def _present_counts(raw: bytes) -> list[list[int]]:
    """[[present, needed]] signatures, per input."""
    from .finalize import signatures_present
    from .psbt_raw import parse_psbt

    return [list(signatures_present(inp)) for inp in parse_psbt(raw).inputs]


def _present(raw: bytes) -> str:
    """"1 of 2 signatures present on every input", or per input when they differ."""
    counts = _present_counts(raw)
    done = all(h >= n for h, n in counts)
    if len({tuple(c) for c in counts}) == 1:
        h, n = counts[0]
        text = f"{h} of {n} signature{'s' if n > 1 else ''} present on every input"
    else:
        text = "signatures present: " + ", ".join(f"input {i} {h} of {n}" for i, (h, n) in enumerate(counts))
    return text + (" (ready to finalize)" if done else "")


def _review_table(r: dict) -> Table:
    # fold, never elide: the officer compares every character of an address
    if "proof" in r:  # a proof of reserves: the message and the coins, nothing paid
        p = r["proof"]
        t = Table("", Column("", overflow="fold"), title="Proof of reserves, reviewed on the device")
        t.add_row("message", Text(f'{p["encoding"]}, {p["length"]} bytes: {p["message"]}'))
        t.add_row("coins", f'{p["coins"]}, total {p["total_sat"] / 1e8:.8f} BTC')
        return t
    t = Table("", Column("address", overflow="fold"), "amount (BTC)", title="Review on the device")
    for s in r.get("spends", []):
        t.add_row("send", Text(s["address"]), f"{s['amount_sat'] / 1e8:.8f}")
    for s in r.get("change", []):
        t.add_row("change", Text(s["address"]), f"{s['amount_sat'] / 1e8:.8f}")
    tenths = r["fee_rate_tenths"]  # the rate the officer was shown, in tenths of sat/vB
    t.add_row("fee", "", f"{r['fee_sat'] / 1e8:.8f} ({tenths // 10}.{tenths % 10} sat/vB)")
    for w in r.get("warnings", []):
        t.add_row("warning", Text(w), "")  # device text, never rich markup
    return t


@main.group()
def reserves():
    """Proof of reserves (BIP-322 proof of funds): a PSBT that proves control
    of a wallet's coins and can never move them, signed on each officer's
    device after it shows the message and the total."""


@reserves.command("prove")
@click.option("--wallet", "wallet_name", required=True, help="The registered multisig wallet the coins belong to.")
@click.option("--message", required=True, help="The message the proof commits to (see --bind-block).")
@click.option("--bind-block", metavar="HASH",
              help="Append a recent block hash and today's date to the message: the recommended form, so that "
                   "the proof cannot have been made before that block.")
@click.option("--challenge", default="0/0", show_default=True, metavar="CHANGE/INDEX",
              help="The wallet address input 0 (the message's to_spend) pays.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Write the proof PSBT here.")
@click.argument("utxos", nargs=-1, required=True, metavar="TXID:VOUT:AMOUNT_SAT:CHANGE/INDEX...")
@port_option
@json_option
def reserves_prove(wallet_name, message, bind_block, challenge, output, utxos, port, as_json):
    """Build the proof PSBT for the wallet's UTXOS; then each officer signs it
    (amanat sign), the signatures are combined (amanat psbt combine) and
    checked (amanat reserves verify)."""
    from datetime import datetime, timezone

    from . import reserves as r

    try:
        coins = [r.parse_coin(u) for u in utxos]
        change, _, index = challenge.partition("/")
        where = (int(change), int(index))
    except (r.ProofError, ValueError) as e:
        raise CliError(e.message if isinstance(e, r.ProofError) else f"--challenge {challenge!r}: CHANGE/INDEX",
                       EXIT_BAD_INPUT) from None
    if bind_block:
        if len(bind_block) != 64 or any(c not in "0123456789abcdef" for c in bind_block.lower()):
            raise CliError("--bind-block: a block hash, 64 hex digits", EXIT_BAD_INPUT)
        message += f"\nblock {bind_block.lower()}\ndate {datetime.now(timezone.utc):%Y-%m-%d}"
    with _device(port) as c:
        descriptor = c.get_wallet(wallet_name)["descriptor"]
    try:
        psbt = r.build_proof(r.wallet_of(descriptor), message.encode(), coins, where)
    except r.ProofError as e:
        raise CliError(e.message, EXIT_BAD_INPUT) from None
    _write_file(output, r.serialize_proof(psbt))
    total = sum(x.amount for x in coins)
    if as_json:
        _emit_json({"output": output, "coins": len(coins), "total_sat": total, "message": message})
    else:
        console.print(f"proof of {len(coins)} coin(s), {total / 1e8:.8f} BTC, written to {output}: "
                      "each officer signs it with `amanat sign`")


@reserves.command("verify")
@click.argument("proof_file", metavar="PROOF.psbt")
@click.option("--message", help="The message expected (default: the one the proof carries).")
@json_option
def reserves_verify(proof_file, message, as_json):
    """Check a signed proof offline: its BIP-322 structure, and every
    signature through libbitcoinkernel with the amounts it states (check
    that those coins are unspent with those amounts on your own node)."""
    from . import psbt_raw
    from . import reserves as r

    try:
        checked = r.verify_proof(psbt_raw.parse_psbt(_read_psbt(proof_file)),
                                 message.encode() if message is not None else None)
    except r.ProofError as e:
        raise CliError(f"the proof does not verify: {e.message}", EXIT_BAD_SIGNATURE) from None
    except AmanatError as e:
        raise CliError(e.message, EXIT_BAD_INPUT) from None
    text = checked.message.decode("utf-8", "replace")
    if as_json:
        _emit_json({"ok": True, "message": text, "challenge": checked.challenge.hex(), "coins": checked.coins,
                    "total_sat": checked.total})
    else:
        console.print(Text(f"message: {text!r}"))
        console.print(f"{checked.coins} coin(s), {checked.total / 1e8:.8f} BTC: every signature verifies "
                      "(libbitcoinkernel); the amounts are as the proof states them")


def _signed_name(f: str, out_dir: str | None) -> str:
    """Where the signed copy of PSBT file `f` goes: NAME.signed.psbt beside
    it, or in `out_dir`."""
    name = Path(f).name.removesuffix(".psbt") + ".signed.psbt"
    return str(Path(out_dir) / name) if out_dir else str(Path(f).with_name(name))


def _check_writable(out: str) -> None:
    # Fail before the officer's work, not after it.
    target = Path(out)
    where = target if target.exists() else target.parent.resolve()
    if not (where.exists() and os.access(where, os.W_OK)) or target.is_dir():
        raise CliError(f"cannot write {out}")


def _batch_files(sources) -> list[str]:
    """PSBT files named, or found in the folders named (*.psbt, not already
    *.signed.psbt, in name order)."""
    files = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            found = sorted(str(f) for f in p.glob("*.psbt") if not f.name.endswith(".signed.psbt"))
            if not found:
                raise CliError(f"{src}: no .psbt files in this folder", EXIT_BAD_INPUT)
            files += found
        else:
            files.append(src)
    if "-" in files:
        raise CliError("sign --batch reads PSBT files, not stdin", 2)
    if len(set(map(os.path.realpath, files))) != len(files):
        raise CliError("sign --batch: a file is named twice", 2)
    return files


def _device_progress(shown, bar, task):
    """progress(stage, done, total) of Client.sign_psbt on a rich bar."""

    def progress(stage, done, total):
        if stage == "device":
            what = (f"device: {shown[done]} (approve or reject on the device)" if done in shown
                    else f"device: {done or 'working'}")
            if total:  # the device's [done, total] of its work
                bar.update(task, description=what, completed=total[0], total=total[1])
            else:
                bar.update(task, description=what, total=None)
        else:
            bar.update(task, description=stage, completed=done, total=total)

    return progress


@main.command()
@click.argument("psbt_files", nargs=-1, required=True, metavar="IN.psbt")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write the signed PSBT (default IN.signed.psbt; - for stdout).")
@click.option("--batch", is_flag=True, help="Sign several PSBTs (files, or folders of .psbt files) after one review of them all.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="With --batch: folder for the signed files (default: beside each, NAME.signed.psbt).")
@click.option("--base64", "as_b64", is_flag=True, help="Write base64 instead of binary.")
@click.option("--no-anti-exfil", "no_anti_exfil", is_flag=True,
              help="Sign in one round, without checking the device's ECDSA nonces (not recommended).")
@port_option
@json_option
def sign(psbt_files, output, batch, out_dir, as_b64, no_anti_exfil, port, as_json):
    """Have the device review and sign a PSBT; every signature is checked here.

    With --batch, several: the device reviews each as it would alone (one it
    would refuse fails the batch before anything is signed), shows the
    batch's totals, the officer approves once, and the device signs each."""
    from rich.progress import BarColumn, Progress, TextColumn

    if batch:
        if output:
            raise CliError("sign --batch writes one file per PSBT: give a folder with --out, not -o", 2)
        return _sign_batch(_batch_files(psbt_files), out_dir, as_b64, port, as_json, not no_anti_exfil)
    if len(psbt_files) != 1 or out_dir:
        raise CliError("sign takes one PSBT (and -o); for several, use --batch", 2)
    psbt_file = psbt_files[0]
    raw = _read_psbt(psbt_file)
    out = output or (str(Path(psbt_file).with_suffix("")) + ".signed.psbt" if psbt_file != "-" else "-")
    if out != "-":
        _check_writable(out)
    with _connect(port) as c, Progress(TextColumn("{task.description}"), BarColumn(),
                                       console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("upload", total=len(raw))
        shown = {}  # screen name -> title, of the prompts the device put up
        c.on_prompt = lambda prompt: _show_prompt(prompt, shown, bar.console)
        _warn_anti_exfil(c, not no_anti_exfil)
        try:
            signed = c.sign_psbt(raw, _device_progress(shown, bar, task), anti_exfil=not no_anti_exfil)
        except AmanatError as e:
            _fail_anti_exfil(e)
    # With -o -, stdout carries the PSBT alone (or the JSON alone): anything
    # for people goes to stderr, so a pipe gets a PSBT the officer approved.
    if out == "-":
        b64 = base64.b64encode(signed.psbt).decode()
        if as_json:
            _emit_json({"psbt": b64, "signatures": signed.signatures, "anti_exfil": signed.anti_exfil,
                        "review": signed.review, "present": _present_counts(signed.psbt)})
            return
        sys.stdout.write(b64 + "\n")
        sys.stdout.flush()
        err_console.print(_review_table(signed.review))
        err_console.print(f"{signed.signatures} signature(s) verified; {_present(signed.psbt)}; "
                          "signed PSBT written to stdout")
        _say_anti_exfil(signed, err_console)
        return
    _write_file(out, base64.b64encode(signed.psbt) if as_b64 else signed.psbt)
    if as_json:
        _emit_json({"output": out, "signatures": signed.signatures, "anti_exfil": signed.anti_exfil,
                    "review": signed.review, "present": _present_counts(signed.psbt)})
        return
    console.print(_review_table(signed.review))
    console.print(f"{signed.signatures} signature(s) verified; {_present(signed.psbt)}; "
                  f"signed PSBT written to {out}")
    _say_anti_exfil(signed, console)


ANTI_EXFIL_RISK = ("its ECDSA nonces are not checked, so a compromised device could leak its keys through "
                   "these signatures")
ANTI_EXFIL_OFF = "warning: anti-exfil is off (--no-anti-exfil): " + ANTI_EXFIL_RISK


def _warn_anti_exfil(c, asked: bool):
    if not asked or not c.anti_exfil:
        err_console.print(Text(ANTI_EXFIL_OFF if not asked else
                               "warning: this device's firmware has no anti-exfil signing; " + ANTI_EXFIL_RISK,
                               style="yellow"))


def _say_anti_exfil(signed, to):
    if signed.anti_exfil:
        to.print(f"anti-exfil: {signed.anti_exfil} ECDSA nonce(s) checked against this host's entropy")


def _fail_anti_exfil(e: AmanatError):
    """_fail, saying first when the device broke off anti-exfil's second round."""
    aborted = getattr(e, "anti_exfil_aborted", None)
    if aborted:
        err_console.print(Text(f"the device did not finish anti-exfil's second round ({aborted} such on this "
                               "device); the next try sends the same entropy again. A device that keeps "
                               "breaking off after seeing the entropy may be trying to choose its nonces.",
                               style="yellow"))
    _fail(e)


def _batch_table(r: dict) -> Table:
    t = Table("", Column("address", overflow="fold"), "amount (BTC)",
              title=f"Batch reviewed on the device: {r['transactions']} transactions, {r['inputs']} inputs signed")
    for d in r["destinations"]:
        t.add_row("send", Text(d["address"]), f"{d['amount_sat'] / 1e8:.8f}")
    for c in r["change"]:
        t.add_row("change", Text(c["to"]), f"{c['amount_sat'] / 1e8:.8f}")
    t.add_row("fee", "", f"{r['fee_sat'] / 1e8:.8f}")
    for w in r["warnings"]:
        t.add_row("warning", Text(w), "")
    return t


def _unchanged(f: str, raw: bytes) -> bool:
    try:
        return _read_psbt(f) == raw
    except CliError:
        return False


def _sign_batch(files, out_dir, as_b64, port, as_json, anti_exfil=True):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    raws = [_read_psbt(f) for f in files]
    outs = [_signed_name(f, out_dir) for f in files]
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    for out in outs:
        _check_writable(out)
    with _connect(port) as c, Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                       console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("upload", total=len(raws[0]))
        shown = {}
        c.on_prompt = lambda prompt: _show_prompt(prompt, shown, bar.console)
        one = _device_progress(shown, bar, task)

        def progress(stage, done, total, k):
            one(stage, done, total)
            if k is not None:
                desc = bar.tasks[0].description
                bar.update(task, description=f"{Path(files[k]).name} ({k + 1} of {len(files)}): {desc}")

        _warn_anti_exfil(c, anti_exfil)
        try:
            result = c.sign_batch(raws, progress, anti_exfil=anti_exfil)
        except AmanatError as e:
            _fail_anti_exfil(e)
    # The files must still be what the officer approved: one edited while
    # the device worked gets no signed copy (the others do).
    changed = [f for f, raw in zip(files, raws) if not _unchanged(f, raw)]
    rows = []
    for f, out, signed in zip(files, outs, result.signed):
        if f in changed:
            rows.append({"file": f, "written": False, "signatures": signed.signatures,
                         "error": "the file changed on disk while the device signed it"})
            continue
        _write_file(out, base64.b64encode(signed.psbt) if as_b64 else signed.psbt)
        rows.append({"file": f, "written": True, "output": out, "signatures": signed.signatures,
                     "anti_exfil": signed.anti_exfil, "present": _present_counts(signed.psbt)})
    if as_json:
        _emit_json({"review": result.review, "files": rows})
    else:
        console.print(_batch_table(result.review))
        table = Table(Column("file", overflow="fold"), "signatures", Column("written to", overflow="fold"))
        for r in rows:
            table.add_row(Text(r["file"]), str(r["signatures"]),
                          Text(r["output"]) if r["written"] else Text("not written", style="red"))
        console.print(table)
        console.print(f"{sum(r['signatures'] for r in rows)} signature(s) verified in {len(rows)} PSBTs")
    if changed:
        raise CliError(f"{changed[0]}: the file changed on disk while the device signed it; "
                       "its signed copy was not written", EXIT_BAD_INPUT)



# ---------------------------------------------------------------- multisig wallets


def _load_policy(source: str, name: str | None):
    """A policy from a file (any of the three forms) or a descriptor given inline."""
    from . import policy

    try:
        is_file = source == "-" or Path(source).is_file()
    except OSError:  # a long descriptor is no file name
        is_file = False
    if not is_file and "(" not in source:
        # No descriptor has no parenthesis: this is a file name, mistyped or missing.
        raise CliError(f"cannot read {source}: no such file (and not a descriptor)", EXIT_BAD_INPUT)
    text = source
    if is_file:
        try:
            data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
            text = data.decode("utf-8")
        except OSError as e:
            raise CliError(f"cannot read {source}: {e.strerror or e}", EXIT_BAD_INPUT) from None
        except UnicodeDecodeError:
            raise CliError(f"{source}: not a text file (UTF-8)", EXIT_BAD_INPUT) from None
    try:
        return policy.load(text, name)
    except policy.PolicyError as e:
        raise CliError(f"{source if is_file else 'descriptor'}: {e.message}", EXIT_BAD_INPUT) from None


def _summary(descriptor: str) -> str:
    """"2 of 3, wsh sortedmulti" for tables; the device's text if it does not parse."""
    from . import policy

    try:
        ms = policy.parse(descriptor)
    except policy.PolicyError:
        return descriptor
    form = {"sh-wsh": "sh(wsh)"}.get(ms.form, ms.form)
    return f"{ms.threshold} of {len(ms.keys)}, {form} {ms.func}"


@main.group()
def wallet():
    """Multisig wallets registered on the device."""


@wallet.command("register")
@click.argument("source", metavar="FILE_OR_DESC")
@click.option("--name", help="Name on the device (1 to 16 printable ASCII; default: the file's Name).")
@port_option
@json_option
def wallet_register(source, name, port, as_json):
    """Register a multisig wallet: a descriptor, a BIP388 policy (JSON file
    {"name", "template", "keys"}) or a Coldcard/Sparrow multisig file."""
    from . import policy

    pol = _load_policy(source, name)
    if pol.name is None:
        raise CliError("the wallet needs a name: give --name", 2)
    with _device(port) as c:
        err_console.print("Check the policy and every cosigner on the device screen and approve it there.")
        res = c.register_wallet(pol.name, pol.descriptor)
    try:
        stored = policy.canonical(res["descriptor"])
    except policy.PolicyError:
        stored = None
    if stored != pol.descriptor:  # the device must hold exactly what the officers gave
        raise CliError(f"the device registered {res['descriptor']!r}, not the wallet sent ({pol.descriptor})")
    out = {"name": res["name"], "descriptor": res["descriptor"], "registration": bytes(res["registration"]).hex()}
    if as_json:
        _emit_json(out)
        return
    # plain text: a descriptor's "[fingerprint/path]" would read as rich markup
    click.echo(f"registered {out['name']}: {_summary(out['descriptor'])}")
    click.echo(out["descriptor"])
    click.echo(f"registration: {out['registration']}")


@wallet.command("export-key")
@click.option("--account", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["coldcard", "descriptor"]), default="coldcard", show_default=True,
              help="coldcard: Coldcard's generic multisig JSON (Sparrow, Specter, Caravan read it); "
                   "descriptor: [fingerprint/path]xpub per script type.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here (default: stdout).")
@port_option
def wallet_export_key(account, fmt, output, port):
    """This device's cosigner keys (BIP48 P2WSH, P2SH-P2WSH; BIP45 P2SH) with their origins, for a
    coordinator building a vault."""
    from . import exports

    with _device(port) as c:
        info = c.info()
        paths = exports.cosigner_paths(info["network"], account)
        xpubs = {p: c.get_xpub(p) for p in paths.values()}
    fp = bytes(info["fingerprint"])
    make = exports.cosigner_json if fmt == "coldcard" else exports.cosigner_descriptors
    _put_text(output, make(fp, info["network"], account, xpubs))


@wallet.command("export")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["descriptor", "bsms", "sparrow", "electrum"]),
              default="descriptor", show_default=True,
              help="descriptor: multipath, receive and change descriptors (Bitcoin Core, BDK, Sparrow); "
                   "bsms: BIP-129 descriptor record; sparrow: Coldcard/Sparrow multisig file; "
                   "electrum: Electrum watch-only wallet file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here (default: stdout).")
@port_option
def wallet_export(name, fmt, output, port):
    """A registered wallet as a watch-only wallet for the coordinator's tool, with every
    cosigner's key origin, so that the PSBTs it makes are ones the devices sign."""
    from . import exports, policy

    with _device(port) as c:
        network = c.info()["network"]
        desc = c.get_wallet(name)["descriptor"]
    try:
        text = exports.wallet_file(fmt, name, desc, network)
    except policy.PolicyError as e:
        raise CliError(f"wallet {name}: {e.message}", EXIT_BAD_INPUT) from None
    _put_text(output, text)


def _put_text(output: str | None, text: str) -> None:
    if output and output != "-":
        _write_file(output, text.encode())
        err_console.print(f"written to {output}")
    else:
        sys.stdout.write(text)


@wallet.command("list")
@port_option
@json_option
def wallet_list(port, as_json):
    """The wallets registered on the device."""
    with _device(port) as c:
        wallets = c.list_wallets()
    if as_json:
        _emit_json(wallets)
        return
    t = Table("name", "policy", title="Registered wallets")
    for w in wallets:
        bad = "error" in w
        t.add_row(Text(w["name"]), Text(w["error"] if bad else _summary(w["descriptor"]), style="red" if bad else ""))
    console.print(t)


@wallet.command("show")
@click.argument("name")
@port_option
@json_option
def wallet_show(name, port, as_json):
    """A registered wallet's policy and cosigners."""
    with _device(port) as c:
        w = c.get_wallet(name)
    keys = [dict(k, fingerprint=bytes(k["fingerprint"]).hex()) for k in w["keys"]]
    out = dict(w, keys=keys, registration=bytes(w["registration"]).hex())
    if as_json:
        _emit_json(out)
        return
    click.echo(f"{out['name']}: {_summary(out['descriptor'])}")
    t = Table("#", "fingerprint", "path", Column("xpub", overflow="fold"), "ours")
    for n, k in enumerate(keys, 1):
        t.add_row(str(n), k["fingerprint"], Text(k["path"]), Text(k["xpub"]), "yes" if k["ours"] else "")
    console.print(t)
    click.echo(out["descriptor"])
    click.echo(f"registration: {out['registration']}")


@wallet.command("delete")
@click.argument("name")
@port_option
@json_option
def wallet_delete(name, port, as_json):
    """Delete a registered wallet (the officer confirms on the device)."""
    with _device(port) as c:
        err_console.print("Confirm the deletion on the device.")
        c.delete_wallet(name)
    _emit_json({"deleted": name}) if as_json else click.echo(f"deleted {name}")


@wallet.command("address")
@click.argument("name")
@click.argument("index", type=click.IntRange(0, 2**31 - 1))
@click.option("--change", is_flag=True, help="An address of the change branch instead of receive.")
@port_option
@json_option
def wallet_address(name, index, change, port, as_json):
    """Show a wallet address on the device; it is also derived here and compared."""
    from . import policy

    with _device(port) as c:
        network = c.info()["network"]
        desc = c.get_wallet(name)["descriptor"]
        expected = policy.parse(desc).address(network, index, change)
        err_console.print("Check the address on the device screen and confirm it there.")
        addr = c.wallet_address(name, index, change)
    if addr != expected:
        raise CliError(f"the device showed {addr}, but address {index} of {name} is {expected}")
    out = {"name": name, "index": index, "change": change, "address": addr}
    _emit_json(out) if as_json else click.echo(addr)


# ---------------------------------------------------------------- fee limits


@main.command()
@click.option("--set-percent", type=float, help="Refuse fees above this percent of the amount sent (0.1 steps).")
@click.option("--set-max-sat", type=click.IntRange(0), help="Refuse fees above this many satoshis.")
@port_option
@json_option
def limits(set_percent, set_max_sat, port, as_json):
    """Show, or change (the officer approves on the device), the fee limits."""
    tenths = None
    if set_percent is not None:
        tenths = round(set_percent * 10)
        if tenths < 0 or abs(tenths - set_percent * 10) > 1e-6:
            raise CliError("--set-percent takes a percentage in steps of 0.1 (e.g. 2.5)", 2)
    with _device(port) as c:
        now = c.get_limits()
        if tenths is not None or set_max_sat is not None:
            err_console.print("Approve the new limits on the device.")
            now = c.set_limits(now["fee_percent_tenths"] if tenths is None else tenths,
                               now["fee_max_sat"] if set_max_sat is None else set_max_sat)
    if as_json:
        _emit_json(now)
        return
    console.print(f"fee limit: {now['fee_percent_tenths'] / 10:.1f} % of the amount sent, "
                  f"and at most {now['fee_max_sat']:,} sat")


# ---------------------------------------------------------------- PSBT tools


def _write_psbt(out: str, data: bytes, as_b64: bool) -> None:
    if out == "-":
        sys.stdout.write(base64.b64encode(data).decode() + "\n")
    else:
        _write_file(out, base64.b64encode(data) if as_b64 else data)


def _write_file(out: str, data: bytes) -> None:
    """Write `out` whole or not at all: a temporary file beside it, renamed."""
    target = Path(out)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:  # a missing folder, no permission: one line, no traceback
        raise CliError(f"cannot write {out}: {e.strerror or e}") from None


@main.group()
def psbt():
    """Preview, combine, finalize and extract PSBTs (no approval on a device)."""


@psbt.command("show")
@click.argument("psbt_file", metavar="IN.psbt")
@click.option("--key", "keys", multiple=True, metavar="[FP/PATH]XPUB",
              help="Offline: an account key of the device (repeat for several accounts).")
@click.option("--wallet", "wallets", multiple=True, metavar="FILE_OR_DESC",
              help="Offline: a wallet registered on the device (repeat for several).")
@click.option("--network", type=click.Choice(["main", "test", "signet", "regtest"]),
              help="Offline: the device's network (default: main for xpub keys, test for tpub).")
@port_option
@json_option
def psbt_show(psbt_file, keys, wallets, network, port, as_json):
    """The device's review of a PSBT, before it goes to the device: the same
    rules and the same screens, computed here with the device's public keys.

    With a device connected, its keys, wallets and fee limits are read from it
    (nothing to approve). Offline, give its account keys with --key and its
    wallets with --wallet; the fee limits are then the device's defaults."""
    from . import preview
    from .inprocess import DeviceCodeError

    raw = _read_psbt(psbt_file)
    chosen = click.get_current_context().meta.get("amanat.select", {})
    offline = bool(keys or wallets or network)
    try:
        if offline:
            named = []
            for i, source in enumerate(wallets):
                pol = _load_policy(source, None)
                named.append((pol.name or f"wallet{i + 1}", pol.descriptor))
            device = preview.from_keys(list(keys), named, network, chosen.get("fingerprint"))
        else:
            with _device(port) as c:
                device = preview.from_device(c, raw)
        out = preview.review(raw, device)
    except preview.PreviewError as e:
        raise CliError(e.message, EXIT_BAD_INPUT) from None
    except DeviceCodeError as e:
        if e.name == "BAD_PARAMS":  # a wallet given that the device could not have registered
            raise CliError(f"wallet: {e.message}", EXIT_BAD_INPUT) from None
        raise CliError(f"the device would refuse it: {e}", EXIT_REFUSED) from None
    if as_json:
        _emit_json({"device": device.fingerprint, "network": device.network, "source": device.source,
                    "limits": device.limits, "review": out["review"], "screens": out["screens"]})
        return
    lim = device.limits
    limits = (f"{lim['fee_percent_tenths'] // 10}.{lim['fee_percent_tenths'] % 10}% of the amount sent, at most "
              f"{lim['fee_max_sat']} sat" if lim else "the device's defaults")
    # plain text: device text is never rich markup, and never cut
    click.echo(f"{psbt_file} as device {device.fingerprint} would show it ({device.source}, {device.network}, "
               f"fee limits: {limits}):")
    for screen in out["screens"]:
        click.echo(f"[{screen['title']}]")
        for line in screen["lines"]:
            click.echo("  " + line)
    r = out["review"]
    click.echo(f"The device would sign {r['signing']} of {r['inputs']} inputs once the officer approves; "
               "approve only what the device itself shows.")


@psbt.command("verify")
@click.argument("files", nargs=-1, required=True, metavar="PSBT...")
@json_option
def psbt_verify(files, as_json):
    """Verify every signature in each PSBT (partial ECDSA, taproot key and
    script path, and those in final scriptSigs/witnesses) against the sighash
    it must commit to, computed here; an ECDSA signature with its anti-exfil
    opening and entropy beside it is also checked to have used them. Exits 6
    naming the file and input of any invalid signature, 8 for a file that is
    not a PSBT the host can read."""
    from . import psbt_tools

    raws, results = {}, {}
    for f in files:
        try:
            raws[f] = _read_psbt(f)
        except CliError as e:
            results[f] = PsbtError(e.message.removeprefix(f"{f}: "))
    for f, r in zip(raws, psbt_tools.verify_many(list(raws.values()))):
        results[f] = r
    rows = []
    for f in files:
        r = results[f]
        if isinstance(r, AmanatError):
            rows.append({"file": f, "valid": False, "error": r.message,
                         "invalid_signature": isinstance(r, SignatureError)})
        else:
            rows.append({"file": f, "valid": True, "txid": r.txid, "inputs": r.inputs, "outputs": r.outputs,
                         "partial_signatures": r.partial, "final_signatures": r.final,
                         "finalized_inputs": r.finalized, "unsigned_inputs": r.unsigned,
                         "anti_exfil_checked": r.anti_exfil})
    bad = [r for r in rows if not r["valid"]]
    if as_json:
        _emit_json({"valid": not bad, "files": rows})
    else:
        table = Table(Column("file", overflow="fold"), "inputs", "partial sigs", "final sigs", "finalized",
                      "unsigned inputs",
                      Column("result", no_wrap=True, min_width=10))
        for r in rows:
            if r["valid"]:
                unsigned = ", ".join(map(str, r["unsigned_inputs"])) or "-"
                table.add_row(Text(r["file"]), str(r["inputs"]), str(r["partial_signatures"]),
                              str(r["final_signatures"]), f"{r['finalized_inputs']}/{r['inputs']}", unsigned, "valid")
            else:
                table.add_row(Text(r["file"]), "", "", "", "", "",
                              Text("INVALID" if r["invalid_signature"] else "unreadable", style="red"))
        console.print(table)
        for r in rows:
            if r.get("anti_exfil_checked"):
                console.print(f"{r['file']}: {r['anti_exfil_checked']} ECDSA nonce(s) checked against the "
                              "anti-exfil opening and entropy in the PSBT")
        for r in bad:  # whole, never cut by the table's width
            click.echo(f"{r['file']}: {r['error']}", err=True)
    if bad:
        worst = next((r for r in bad if r["invalid_signature"]), bad[0])
        raise CliError(f"{len(bad)} of {len(rows)} PSBTs failed; {worst['file']}: {worst['error']}",
                       EXIT_BAD_SIGNATURE if worst["invalid_signature"] else EXIT_BAD_INPUT)


@psbt.command("sign")
@click.argument("files", nargs=-1, required=True, metavar="PSBT...")
@click.option("--xprv-file", required=True, type=click.Path(dir_okay=False),
              help="A file holding the master extended private key (xprv, or tprv on test networks).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the signed files (default: beside each, NAME.signed.psbt).")
@click.option("--wallet", "wallets", multiple=True, metavar="FILE_OR_DESC",
              help="A multisig wallet the key cosigns (repeat for several), as a device registers it.")
@click.option("--network", type=click.Choice(["main", "test", "signet", "regtest"]),
              help="The key's network (default: main for xprv, test for tprv).")
@click.option("--base64", "as_b64", is_flag=True, help="Write base64 instead of binary.")
@json_option
def psbt_sign(files, xprv_file, out_dir, wallets, network, as_b64, as_json):
    """Sign PSBTs with a software key, by the device's own rules: the same
    review (refusals, change, fee limits at the device's defaults), the same
    signatures (RFC6979 with low-R grinding; BIP340 with fresh randomness),
    each verified here. One signed file per input file; nothing is written
    for a PSBT the device would refuse (exit 5, its reason)."""
    from . import soft_signer

    if "-" in files:
        raise CliError("psbt sign reads PSBT files (it writes one signed file beside each, or in --out), not stdin", 2)
    named = []
    for i, source in enumerate(wallets):
        pol = _load_policy(source, None)
        named.append((pol.name or f"wallet{i + 1}", pol.descriptor))
    raws = {f: _read_psbt(f) for f in files}
    try:
        ks = soft_signer.load_key(xprv_file, network)
    except soft_signer.KeyFileError as e:
        raise CliError(e.message, EXIT_BAD_INPUT) from None
    try:
        results = soft_signer.sign_many(list(raws.values()), ks, named)
    finally:
        ks.forget()
    rows = []
    for f, r in zip(files, results):
        if isinstance(r, AmanatError):
            msg = r.message + (" (here: give the wallet with --wallet)" if "is not registered" in r.message else "")
            rows.append({"file": f, "signed": False, "error": msg, "refused": isinstance(r, soft_signer.Refused)})
            continue
        out = _signed_name(f, out_dir)
        if out_dir:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        _write_file(out, base64.b64encode(r.psbt) if as_b64 else r.psbt)
        rows.append({"file": f, "signed": True, "output": out, "signatures": r.signatures,
                     "fee_sat": r.review.get("fee_sat"), "review": r.review})
    bad = [r for r in rows if not r["signed"]]
    if as_json:
        _emit_json({"files": rows})
    else:
        table = Table(Column("file", overflow="fold"), "signatures", "fee (sat)", Column("written to", overflow="fold"))
        for r in rows:
            if r["signed"]:
                table.add_row(Text(r["file"]), str(r["signatures"]), f"{r['fee_sat']:,}", Text(r["output"]))
            else:
                table.add_row(Text(r["file"]), "", "", Text("refused" if r["refused"] else "failed", style="red"))
        console.print(table)
        for r in bad:
            click.echo(f"{r['file']}: {r['error']}", err=True)
    if bad:
        raise CliError(f"{len(bad)} of {len(rows)} PSBTs not signed; {bad[0]['file']}: {bad[0]['error']}",
                       EXIT_REFUSED if all(r["refused"] for r in bad) else 1)


@psbt.command("combine")
@click.argument("inputs", nargs=-1, required=True, metavar="A.psbt B.psbt ...")
@click.option("-o", "--output", required=True, help="Where to write the combined PSBT (- for base64 on stdout).")
@click.option("--base64", "as_b64", is_flag=True, help="Write base64 instead of binary.")
@json_option
def psbt_combine(inputs, output, as_b64, as_json):
    """Merge the signatures of PSBTs of the same unsigned transaction."""
    from . import psbt_tools

    if len(inputs) < 2:
        raise CliError("give at least two PSBTs to combine", 2)
    try:
        merged = psbt_tools.combine([_read_psbt(f) for f in inputs])
    except AmanatError as e:
        _fail(e)
    if output == "-" and as_json:
        _emit_json({"psbt": base64.b64encode(merged).decode()})
        return
    _write_psbt(output, merged, as_b64)
    if output != "-":
        _emit_json({"output": output}) if as_json else console.print(
            f"{len(inputs)} PSBTs combined into {output}")


@psbt.command("finalize")
@click.argument("psbt_file", metavar="IN.psbt")
@click.option("-o", "--output", required=True, help="Where to write the finalized PSBT (- for base64 on stdout).")
@click.option("--base64", "as_b64", is_flag=True, help="Write base64 instead of binary.")
@json_option
def psbt_finalize(psbt_file, output, as_b64, as_json):
    """Verify every signature here, then finalize."""
    from . import psbt_tools

    try:
        final = psbt_tools.finalize(_read_psbt(psbt_file))
    except AmanatError as e:
        _fail(e)
    txid = _txid(final.tx)
    if output == "-" and as_json:  # stdout holds the JSON alone, the PSBT in it
        _emit_json({"psbt": base64.b64encode(final.psbt).decode(), "signatures": final.signatures, "txid": txid,
                    "verified": final.checked})
        return
    _write_psbt(output, final.psbt, as_b64)
    if output == "-":  # stdout holds the PSBT
        return
    if as_json:
        _emit_json({"output": output, "signatures": final.signatures, "txid": txid, "verified": final.checked})
    else:
        console.print(f"{final.signatures} signature(s) verified; finalized PSBT written to {output}")
        console.print(f"txid {txid}" + ("" if final.checked else " (scripts not checked: spent outputs unknown)"))


def _txid(tx: bytes) -> str:
    from embit.transaction import Transaction

    return Transaction.parse(tx).txid().hex()


@psbt.command("extract")
@click.argument("psbt_file", metavar="IN.psbt")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the transaction hex here (default: stdout).")
@click.option("--spent-from", type=click.Path(exists=True, dir_okay=False),
              help="Raw previous transactions (hex, one per line) for inputs the PSBT does not describe.")
@json_option
def psbt_extract(psbt_file, output, spent_from, as_json):
    """The network transaction of a finalized PSBT, checked by libbitcoinkernel."""
    from . import psbt_tools

    prev = []
    if spent_from:
        try:
            prev = [bytes.fromhex(w) for w in Path(spent_from).read_text().split()]
        except ValueError:
            raise CliError(f"{spent_from}: not hex transactions, one per line", EXIT_BAD_INPUT) from None
    try:
        ex = psbt_tools.extract(_read_psbt(psbt_file), prev)
    except AmanatError as e:
        _fail(e)
    if output:
        _write_file(output, (ex.tx.hex() + "\n").encode())
    if as_json:
        _emit_json({"txid": ex.txid, "hex": ex.tx.hex(), "verified": ex.checked, "output": output,
                    "unknown_inputs": ex.unknown_inputs})
        return
    if not ex.checked:
        err_console.print(f"not checked by libbitcoinkernel: input(s) {', '.join(map(str, ex.unknown_inputs))} "
                          "do not say what they spend (give --spent-from)")
    if output:
        console.print(f"txid {ex.txid}; transaction written to {output}")
    else:
        click.echo(ex.tx.hex())
        err_console.print(f"txid {ex.txid}")

if __name__ == "__main__":
    sys.exit(main())

"""`amanat`: the officer's and developer's command line."""

import json
import sys

import click
from rich.console import Console
from rich.table import Table

console = Console()


class CliError(click.ClickException):
    """A one-line error for people; no traceback."""


@click.group()
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
@click.option("--heap", type=int, default=None, help="Cap the MicroPython heap (bytes).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench(device_crypto, heap, as_json):
    """Print measured speed figures."""
    from . import bench as bench_mod

    if not device_crypto:
        raise CliError("choose what to measure: --device-crypto")
    rows = bench_mod.device_crypto_report(heap)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
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


if __name__ == "__main__":
    sys.exit(main())

"""Amanat host tools: transport, CLIs, PSBT tooling and the emulator launcher."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("amanat")  # pyproject.toml's, the one home of it
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"

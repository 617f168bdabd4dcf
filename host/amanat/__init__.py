"""Amanat host tools: transport, CLIs, PSBT tooling and the emulator launcher."""

__version__ = "0.1.0"

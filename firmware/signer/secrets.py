"""Handling of secret bytes on the device.

`bytes` and `str` cannot be cleared in MicroPython, so secrets are held in
bytearrays and overwritten with `wipe` as soon as they are no longer needed.
"""

from .crypto.hashlib_ext import wipe  # noqa: F401  (one implementation, in viper)

"""Handling of secret bytes on the device.

`bytes` and `str` cannot be cleared in MicroPython, so secrets are held in
bytearrays and overwritten as soon as they are no longer needed.
"""


def wipe(buf):
    """Overwrite a bytearray (or memoryview of one) with zeros."""
    if buf is None:
        return
    for i in range(len(buf)):
        buf[i] = 0

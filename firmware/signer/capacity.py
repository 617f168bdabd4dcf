"""What the device takes on: PSBT size, inputs, outputs, free flash, and its
heap. Published by `info` so that a host can check a PSBT before sending it,
and enforced by the device with a clear error (never a MemoryError).

Signing needs the PSBT spooled, its signed copy and the spooled signatures in
flash at once: about twice the PSBT plus room for the signatures.
"""

import gc
import os

from .errors import BadPsbt, StorageError
from .spool import CHUNK

MAX_PSBT_BYTES = 1 << 20
MAX_INPUTS = 2500
MAX_OUTPUTS = 10000
BATCH_PSBTS = 20  # PSBTs signed after one approval (batch.py)
BATCH_DESTINATIONS = 40  # distinct addresses a batch pays: each is a line the officer reads
BATCH_WARNINGS = 30
BATCH_INPUTS = MAX_INPUTS  # over all its PSBTs: one Bloom filter checks that no coin is spent twice
SIGNATURE_ROOM = 200  # flash per input for its spooled signatures and their copy


def flash_free(root):
    """Free bytes on the filesystem at `root`."""
    st = os.statvfs(root)
    return st[0] * st[4]  # block size * free blocks


def check_upload(root, length):
    """StorageError unless a PSBT of `length` bytes can be spooled and signed."""
    need = 2 * length + 64 * 1024
    free = flash_free(root)
    if need > free:
        raise StorageError("not enough free flash for a PSBT of %d bytes: it needs %d, %d are free"
                           % (length, need, free))


def check_batch(root, total):
    """StorageError unless the signed copies of a batch of PSBTs of `total`
    bytes (already in flash) fit beside them."""
    need = total + 64 * 1024
    free = flash_free(root)
    if need > free:
        raise StorageError("not enough free flash to sign a batch of %d bytes: it needs %d more, %d are free"
                           % (total, need, free))


def check_counts(inputs, outputs):
    """BadPsbt if the transaction has more inputs or outputs than the device signs."""
    if inputs > MAX_INPUTS:
        raise BadPsbt("%d inputs: this device signs at most %d" % (inputs, MAX_INPUTS))
    if outputs > MAX_OUTPUTS:
        raise BadPsbt("%d outputs: this device signs at most %d" % (outputs, MAX_OUTPUTS))


def limits(root):
    return {"psbt_bytes": MAX_PSBT_BYTES, "inputs": MAX_INPUTS, "outputs": MAX_OUTPUTS,
            "flash_free": flash_free(root), "chunk_bytes": CHUNK, "batch_psbts": BATCH_PSBTS,
            "batch_destinations": BATCH_DESTINATIONS, "batch_inputs": BATCH_INPUTS}


class Heap:
    """The heap as `info` reports it: its size, what is free now, what was
    free after boot and once the signing code was imported, and (when the board measures) the
    most in use at any progress point of the last signing."""

    def __init__(self, measure):
        self.measure = measure
        gc.collect()
        self.size = gc.mem_free() + gc.mem_alloc()
        self.free_after_boot = gc.mem_free()
        self.free_after_imports = None
        self.peak = None
        self.peak_at = None  # what the device was doing then (ping's busy)

    def imported(self):
        gc.collect()
        self.free_after_imports = gc.mem_free()

    def start(self):
        self.peak = None
        self.peak_at = None

    def sample(self, at=None):
        if self.measure:
            gc.collect()
            used = gc.mem_alloc()
            if self.peak is None or used > self.peak:
                self.peak = used
                self.peak_at = at

    def to_dict(self):
        gc.collect()
        return {"size": self.size, "free": gc.mem_free(), "free_after_boot": self.free_after_boot,
                "free_after_imports": self.free_after_imports, "peak": self.peak, "peak_at": self.peak_at}

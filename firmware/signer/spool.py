"""PSBT upload spooled to flash and hashed as it arrives (docs/protocol.md).

The PSBT is never held whole in RAM: chunks go straight to a flash file, and
SHA-256 is updated with each one. Signing names the upload by that hash and
the file is hashed again just before signing, so what is signed is what was
reviewed.
"""

import hashlib
import os

from .errors import StorageError, UploadError
from .framing import ticks_diff

CHUNK = 4096
IDLE_MS = 10000  # an upload with no chunk for this long: its host has gone
_READ = 1024


def file_sha256(path, progress=None):
    """SHA-256 of a flash file; `progress()` is called every 16 KiB so that
    the device keeps answering pings while it hashes a large PSBT."""
    h = hashlib.sha256()
    buf = bytearray(_READ)
    mv = memoryview(buf)
    done = 0
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
            done += n
            if progress is not None and done % 16384 < _READ:
                progress()
    return h.digest()


class Upload:
    def __init__(self, path):
        self.path = path
        self._f = None
        self._h = None
        self.length = 0
        self.received = 0
        self.sha256 = None  # set when complete
        self.touched = 0  # ticks of the last chunk

    def begin(self, length, now):
        """Start an upload of `length` bytes (checked by the caller against
        the device's capacity), discarding any earlier one; `now` in ticks."""
        self.abort()
        self.touched = now
        try:
            self._f = open(self.path, "wb")
        except OSError as e:
            raise StorageError("cannot open the upload file: %s" % e)
        self._h = hashlib.sha256()
        self.length = length
        self.received = 0
        self.sha256 = None

    def chunk(self, offset, data, now):
        if self._f is None:
            raise UploadError("no upload in progress")
        self.touched = now
        if offset != self.received:
            raise UploadError("chunk at offset %d, expected %d" % (offset, self.received))
        if not data or len(data) > CHUNK or self.received + len(data) > self.length:
            raise UploadError("chunk of %d bytes does not fit the upload" % len(data))
        try:
            self._f.write(data)
        except OSError as e:
            self.abort()
            raise StorageError("flash write failed: %s" % e)
        self._h.update(data)
        self.received += len(data)
        return self.received

    def end(self):
        if self._f is None:
            raise UploadError("no upload in progress")
        if self.received != self.length:
            raise UploadError("upload incomplete: %d of %d bytes" % (self.received, self.length))
        self._f.close()
        self._f = None
        self.sha256 = self._h.digest()
        self._h = None
        return self.sha256

    def check(self, sha256, progress=None):
        """Raise unless a complete upload with this hash is in flash, unchanged."""
        if self.sha256 is None or self.sha256 != sha256:
            raise UploadError("no complete upload with this hash")
        if file_sha256(self.path, progress) != sha256:
            raise UploadError("the uploaded PSBT changed in flash")

    def move_to(self, path):
        """Give the complete upload's file to another owner (a batch): the
        upload is empty again."""
        try:
            os.remove(path)
        except OSError:
            pass
        os.rename(self.path, path)
        self.sha256 = None
        self.length = self.received = 0

    def abort(self):
        if self._f is not None:
            self._f.close()
        self._f = None
        self._h = None
        self.sha256 = None

    def active(self):
        return self._f is not None

    def expire(self, now):
        """Drop an upload in progress whose host stopped sending, and its
        partial spool (the device stays idle, the flash stays free)."""
        if self._f is not None and ticks_diff(now, self.touched) > IDLE_MS:
            self.abort()
            try:
                os.remove(self.path)
            except OSError:
                pass

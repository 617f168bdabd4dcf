"""Stored records: JSON files written as new, then renamed over the old
(littlefs renames atomically: after a power cut the record is the old one
or the new one, never half of each), each carrying its format version.

A record of an older version is brought up to date by the migrations its
reader gives, one version at a time; one that does not parse, or comes
from a newer firmware, is a StorageError naming it: reported, never
silently replaced by defaults.
"""

import json
import os

from .errors import StorageError


def write(path, what, version, value):
    """Store the dict `value` as version `version` of the record `what`."""
    rec = dict(value)
    rec["version"] = version
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(rec))
        os.rename(tmp, path)
    except OSError as e:
        raise StorageError("cannot write the %s: %s" % (what, e))


def read(path, what, version, migrations=(), missing=None):
    """The record at `path` as version `version` (without its "version"
    field): `missing` if there is none (StorageError if that is None).
    migrations[v](record) turns version v into v + 1; a record without a
    version is version 0."""
    try:
        with open(path) as f:
            raw = f.read()
    except OSError:
        if missing is None:
            raise StorageError("the %s is missing" % what)
        return dict(missing)
    try:
        rec = json.loads(raw)
        if not isinstance(rec, dict):
            raise ValueError
    except ValueError:
        raise StorageError("the %s record is damaged (it does not parse)" % what)
    v = rec.pop("version", 0)
    if not isinstance(v, int) or v < 0 or v > version:
        raise StorageError("the %s record has format version %r; this firmware reads up to %d" % (what, v, version))
    while v < version:
        if v >= len(migrations):
            raise StorageError("the %s record has format version %d, which this firmware cannot migrate" % (what, v))
        rec = migrations[v](rec)
        v += 1
    return rec

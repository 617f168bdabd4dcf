"""BIP341 commitments the host computes: leaf hashes and tweaked output keys."""

from coincurve import PublicKeyXOnly
from embit.hashes import tagged_hash
from embit.script import Script

LEAF_VERSION = 0xC0  # tapscript


def leaf_hash(script: bytes, version: int = LEAF_VERSION) -> bytes:
    """The TapLeaf hash of a leaf script (raw script bytes, no length prefix)."""
    return tagged_hash("TapLeaf", bytes([version]) + Script(script).serialize())


def output_key(internal: bytes, merkle_root: bytes) -> tuple[bytes, bool]:
    """(x-only output key, its parity) of an x-only internal key tweaked with a
    script tree's root. ValueError if `internal` is not a point."""
    key = PublicKeyXOnly(internal)
    key.tweak_add(tagged_hash("TapTweak", internal + merkle_root))
    return key.format(), key.parity

"""BIP32 children of a parent derived many times (a branch's addresses), and
private keys that compute their public key once.

embit's HDKey.child computes the parent's public key again for every child
(an EC multiplication when the parent is private), and its constructor
base58-encodes each new key to check its version: about 500 bytes of
scratch per key, which on a 128 KiB heap leaves holes behind a long
signing. embit's PrivateKey computes its public key on every sec(). Here a
parent's public key and fingerprint are computed once, a child takes the
parent's version (already checked), and a child's private key keeps its
public key.
"""

import hmac

from embit import bip32, ec
from embit.hashes import hash160
from embit.misc import copy, secp256k1

from .keyexpr import HARDENED


class PrivateKey(ec.PrivateKey):
    _public = None

    def get_public_key(self):
        if self._public is None:
            self._public = ec.PrivateKey.get_public_key(self)
        return self._public


class Node(bip32.HDKey):
    """An HDKey built from a checked parent, without the constructor's checks."""

    def __init__(self, key, chain_code, version, depth, fingerprint, child_number):
        self.key = key
        self.chain_code = chain_code
        self.version = version
        self.depth = depth
        self.fingerprint = fingerprint
        self._my_fingerprint = b""
        self.child_number = child_number


class Parent:
    """A node whose non-hardened children are derived repeatedly."""

    def __init__(self, node):
        self.node = node
        self.sec = node.sec()
        self.fingerprint = hash160(self.sec)[:4]

    def _tweak(self, index):
        if not 0 <= index < HARDENED:
            raise ValueError("not a non-hardened index: %r" % (index,))
        return hmac.new(self.node.chain_code, self.sec + index.to_bytes(4, "big"), digestmod="sha512").digest()

    def key(self, index):
        """The child's key (private if the parent is)."""
        return self._key(self._tweak(index))

    def _key(self, raw):
        node = self.node
        if node.is_private:
            return PrivateKey(secp256k1.ec_privkey_add(raw[:32], node.key.serialize()))
        return ec.PublicKey(secp256k1.ec_pubkey_add(copy(node.key._point), raw[:32]))

    def child(self, index):
        """The child at `index`, as embit's node.child(index) gives it."""
        raw = self._tweak(index)
        node = self.node
        return Node(self._key(raw), raw[32:], node.version, node.depth + 1, self.fingerprint, index)

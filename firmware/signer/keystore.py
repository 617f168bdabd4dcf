"""The device's keys: a BIP39 mnemonic (or a SLIP-0039 backup's master
secret) turned into a BIP32 root, kept in RAM.

Nothing here talks to a screen or a serial line; the request handlers ask the
keystore for public data (fingerprint, xpubs) and hand it PSBTs to sign.
"""

from embit import bip32, bip39
from embit.networks import NETWORKS

from .secrets import wipe


class KeystoreError(Exception):
    pass


class Keystore:
    def __init__(self, network="main"):
        if network not in NETWORKS:
            raise KeystoreError("unknown network: %s" % network)
        self.network_name = network
        self.network = NETWORKS[network]
        self.root = None

    @property
    def loaded(self):
        return self.root is not None

    def load_mnemonic(self, mnemonic, passphrase=""):
        words = " ".join(mnemonic.split())
        if not bip39.mnemonic_is_valid(words):
            raise KeystoreError("invalid mnemonic: unknown word or bad checksum")
        seed = bytearray(bip39.mnemonic_to_seed(words, password=passphrase))
        try:
            self.root = bip32.HDKey.from_seed(seed, version=self.network["xprv"])
        finally:
            wipe(seed)

    def load_entropy(self, entropy, passphrase=b""):
        """Load from BIP39 entropy (bytearray) and passphrase (bytes-like)."""
        words = bip39.mnemonic_from_bytes(bytes(entropy))
        self.load_mnemonic(words, bytes(passphrase).decode())

    def load_slip39(self, ems, meta, passphrase=b""):
        """Load from a SLIP-0039 encrypted master secret (bytearray) and its
        (identifier, extendable, exponent): the passphrase decrypts it to the
        master secret, which is the BIP32 seed (SLIP-0039's semantics)."""
        from .slip39 import decrypt

        identifier, extendable, exponent = meta
        seed = bytearray(decrypt(bytes(ems), bytes(passphrase), identifier, extendable, exponent))
        try:
            self.root = bip32.HDKey.from_seed(seed, version=self.network["xprv"])
        finally:
            wipe(seed)

    def load_sealed(self, secret, meta, passphrase=b""):
        """Load what storage.unseal gives: BIP39 entropy (meta None) or a SLIP-0039 backup."""
        if meta is None:
            self.load_entropy(secret, passphrase)
        else:
            self.load_slip39(secret, meta, passphrase)

    def _require(self):
        if self.root is None:
            raise KeystoreError("no key loaded")
        return self.root

    @property
    def fingerprint(self):
        return self._require().my_fingerprint

    def xpub(self, path):
        """Extended public key at `path` ("m/84h/0h/0h"), in the network's version."""
        key = self._require().derive(path).to_public()
        # SLIP-132 versions (zpub...) are not used: descriptors carry the script type.
        key.version = self.network["xpub"]
        return key.to_base58()

    def forget(self):
        self.root = None

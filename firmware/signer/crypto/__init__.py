"""Device crypto for embit on MicroPython.

Stock MicroPython has no `secp256k1` module, no sha512/ripemd160/pbkdf2 in
`hashlib` and no `hmac`. install() puts the project's own implementations into
sys.modules; it must run before embit is first imported.
"""

import sys


def install():
    from . import hashlib_ext, hmac, secp256k1

    sys.modules["hashlib"] = hashlib_ext
    sys.modules["hmac"] = hmac
    sys.modules["secp256k1"] = secp256k1

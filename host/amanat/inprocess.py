"""Drive the firmware's keystore and signer in a MicroPython process, no serial line.

For the demo and the tests: the firmware code runs on the real MicroPython VM
with the project's own device crypto; inputs and outputs cross as hex in JSON.
"""

import json

from . import mpy

_PRELUDE = """
import json
from binascii import hexlify, unhexlify
from signer import crypto
crypto.install()
from signer.keystore import Keystore
from signer.psbt_signer import sign_psbt
ks = Keystore(%(network)r)
ks.load_mnemonic(%(mnemonic)r, %(passphrase)r)
"""


def _run(body: str, mnemonic: str, passphrase: str, network: str, heap=None):
    code = _PRELUDE % {"network": network, "mnemonic": mnemonic, "passphrase": passphrase}
    return mpy.run_json(code + body, heap=heap)


def xpubs(mnemonic: str, paths: list[str], passphrase="", network="main", heap=None) -> dict:
    """{"fingerprint": hex, "xpubs": {path: xpub}} computed on the device."""
    body = """
out = {"fingerprint": hexlify(ks.fingerprint).decode(), "xpubs": {}}
for p in %r:
    out["xpubs"][p] = ks.xpub(p)
print(json.dumps(out))
""" % (list(paths),)
    return _run(body, mnemonic, passphrase, network, heap)[0]


def sign(psbt: bytes, mnemonic: str, passphrase="", network="main", heap=None):
    """(signed PSBT bytes, signatures added), signed on the device."""
    body = """
raw, n = sign_psbt(unhexlify(%s), ks)
print(json.dumps({"psbt": hexlify(raw).decode(), "count": n}))
""" % (json.dumps(psbt.hex()),)
    out = _run(body, mnemonic, passphrase, network, heap)[0]
    return bytes.fromhex(out["psbt"]), out["count"]

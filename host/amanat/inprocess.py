"""Drive the firmware's keystore, review and signer in a MicroPython process, no serial line.

For the demo, the tests and the benchmarks: the firmware code runs on the real
MicroPython VM with the project's own device crypto, through the firmware's
own entry point for this (firmware/run_signer.py: one JSON request on stdin,
one JSON answer). PSBTs go in through a temporary file and come back as hex. A
typed device error (BadPsbt, Refused, ...) is raised here as DeviceCodeError;
anything else that stops the VM is a MicroPythonError with its traceback.

show() reviews with a device's public keys only (amanat psbt show).
review(), sign() and sign_with_review() take `wallets`, [(name, descriptor)]
registered first (parsed, checked against the seed and stored with the
firmware's Registry in a temporary flash folder, no officer prompt), and
`limits`, the fee limits ({"fee_percent_tenths", "fee_max_sat"}; the device's
defaults if None).
"""

import json
import os
import shutil
import tempfile

from . import mpy, paths


class DeviceCodeError(Exception):
    """The firmware refused: `name` is the wire error name (REFUSED, BAD_PSBT, ...)."""

    def __init__(self, name: str, message: str, code: int | None = None):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.code = code


def _call(op: str, mnemonic: str, passphrase: str, network: str, heap=None, **fields) -> dict:
    return _run(dict(fields, op=op, mnemonic=mnemonic, passphrase=passphrase, network=network), heap)


def _run(req: dict, heap=None) -> dict:
    out = mpy.run_script(paths.firmware_dir() / "run_signer.py", stdin=json.dumps(req), heap=heap)
    answer = json.loads(out.strip().splitlines()[-1])
    if "error" in answer:
        err = answer["error"]
        raise DeviceCodeError(err["name"], err["message"], err.get("code"))
    return answer


def _with_psbt(psbt: bytes, wallets, fn):
    """fn(psbt file, flash folder or None), with both removed afterwards."""
    with tempfile.NamedTemporaryFile(suffix=".psbt", delete=False) as f:
        f.write(psbt)
    flash = tempfile.mkdtemp(prefix="amanat-flash-") if wallets is not None else None
    try:
        return fn(f.name, flash)
    finally:
        os.unlink(f.name)
        if flash is not None:
            shutil.rmtree(flash, ignore_errors=True)


def _wallets(wallets):
    return None if wallets is None else [list(w) for w in wallets]


def xpubs(mnemonic: str, paths: list[str], passphrase="", network="main", heap=None) -> dict:
    """{"fingerprint": hex, "xpubs": {path: xpub}} computed on the device."""
    return _call("xpubs", mnemonic, passphrase, network, heap, paths=list(paths))


def review(psbt: bytes, mnemonic: str, passphrase="", network="main", heap=None, wallets=None,
           limits=None) -> dict:
    """The device's review summary of a PSBT, or DeviceCodeError."""
    return _with_psbt(psbt, wallets, lambda path, flash: _call(
        "review", mnemonic, passphrase, network, heap, psbt=path, flash=flash, wallets=_wallets(wallets),
        limits=limits))


def show(psbt: bytes, fingerprint: str, keys: dict, network="main", wallets=(), limits=None, heap=None,
         anti_exfil=None) -> dict:
    """{"review", "screens"}: the device's review of `psbt` and the screens it
    would show, computed without its seed: `fingerprint` (hex) and `keys`
    {path: xpub} are the device's public side, `wallets` [(name, descriptor)]
    those it has registered (DeviceCodeError NO_KEY: a path under none of the
    keys); `anti_exfil` whether it signs in anti-exfil's rounds (None: not told)."""
    return _with_psbt(psbt, None, lambda path, _: _run(
        {"op": "show", "network": network, "watch": {"fingerprint": fingerprint, "keys": dict(keys)},
         "psbt": path, "wallets": _wallets(wallets), "limits": limits, "anti_exfil": anti_exfil}, heap))


def sign(psbt: bytes, mnemonic: str, passphrase="", network="main", heap=None, wallets=None, limits=None):
    """(signed PSBT bytes, signatures added): reviewed, then signed, on the device."""
    out = sign_with_review(psbt, mnemonic, passphrase, network, heap, wallets=wallets, limits=limits)
    return out["psbt"], out["count"]


def sign_with_review(psbt: bytes, mnemonic: str, passphrase="", network="main", heap=None, wallets=None,
                     limits=None) -> dict:
    """{"psbt": signed bytes, "count": int, "review": dict, "progress": [(done, total)]}."""
    out = _with_psbt(psbt, wallets, lambda path, flash: _call(
        "sign", mnemonic, passphrase, network, heap, psbt=path, flash=flash, wallets=_wallets(wallets),
        limits=limits))
    out["psbt"] = bytes.fromhex(out["psbt"])
    return out


def sign_file(src: str, dst: str, mnemonic: str, passphrase="", network="main", heap=None) -> dict:
    """Review and sign file `src` into file `dst` as the device does with its flash
    (the signatures spooled to a third file). Returns {"count", "review",
    "heap_after_setup"}: the bytes in use once the code and keys are loaded."""
    spool = dst + ".sigs"
    try:
        return _call("sign_file", mnemonic, passphrase, network, heap, psbt=src, out=dst, spool=spool)
    finally:
        if os.path.exists(spool):
            os.unlink(spool)

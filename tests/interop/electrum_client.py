"""Drive a real Electrum (Debian's python3-electrum) offline, for the
interop test: run with the system python3, one JSON request on stdin, one
JSON answer on stdout.

{"op": "make_psbt", "wallet": path, "home": dir, "funding": [hex], "pay_to": address,
 "amount": sat, "fee": sat}  -> {"psbt": base64, "addresses": [first receive address]}
{"op": "finalize", "wallet": path, "home": dir, "psbts": [base64, ...]} -> {"tx": hex, "complete": bool}
"""

import base64
import json
import sys

from electrum import constants, util
from electrum.simple_config import SimpleConfig
from electrum.storage import WalletStorage
from electrum.transaction import PartialTxOutput, Transaction, tx_from_any
from electrum.wallet import Wallet
from electrum.wallet_db import WalletDB


def open_wallet(path, home):
    config = SimpleConfig({"regtest": True, "electrum_path": home, "offline": True})
    storage = WalletStorage(path)
    db = WalletDB(storage.read(), manual_upgrades=False)
    return Wallet(db, storage, config=config)


def make_psbt(req):
    w = open_wallet(req["wallet"], req["home"])
    for raw in req["funding"]:
        w.adb.add_transaction(Transaction(raw))
    coins = w.get_spendable_coins(None)
    out = [PartialTxOutput.from_address_and_value(req["pay_to"], req["amount"])]
    tx = w.make_unsigned_transaction(coins=coins, outputs=out, fee=req["fee"], rbf=True)
    tx.prepare_for_export_for_hardware_device(w)  # full key origins, previous transactions
    return {"psbt": base64.b64encode(tx.serialize_as_bytes()).decode(), "addresses": w.get_receiving_addresses()[:1]}


def finalize(req):
    w = open_wallet(req["wallet"], req["home"])
    tx = tx_from_any(req["psbts"][0])
    for other in req["psbts"][1:]:
        tx.combine_with_other_psbt(tx_from_any(other))
    tx.add_info_from_wallet(w)  # the wallet's own reading of each input's script (threshold, keys)
    tx.finalize_psbt()
    return {"tx": tx.serialize(), "complete": tx.is_complete()}


def main():
    req = json.loads(sys.stdin.read())
    constants.set_regtest()
    loop, stop, thread = util.create_and_start_event_loop()
    try:
        out = {"make_psbt": make_psbt, "finalize": finalize}[req["op"]](req)
    finally:
        loop.call_soon_threadsafe(stop.set_result, 1)
        thread.join(timeout=5)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

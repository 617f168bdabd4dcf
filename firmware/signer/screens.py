"""Every screen the device shows, built from plain data.

A screen is a dict: {"screen": name, "title": text, "lines": [text], ...}
plus structured fields for the audit trail and DebugLink (integers, text,
lists and maps only: no floats; a fee rate is in tenths of sat/vB). The
board draws "title" and "lines"; ui.py shows a screen and waits for the
officer's answer. Nothing here decides anything: the handlers pass in what
they have checked.
"""

KINDS = {"wsh": "P2WSH", "sh-wsh": "P2SH-P2WSH", "sh": "P2SH", "tr": "P2TR script path"}


def btc(sat):
    return "%d.%08d BTC" % (sat // 100000000, sat % 100000000)


def tenths(n):
    """12 -> "1.2" (fee rates and percentages are kept in tenths)."""
    return "%d.%d" % (n // 10, n % 10)


# ---- first start and unlock: text prompts ("entry": what is typed)


def _prompt(name, title, line, err, entry):
    lines = [line]
    if err:
        lines.append(err)
    return {"screen": name, "title": title, "lines": lines, "error": err, "entry": entry}


def trail_head(screen, head):
    """The audit trail's (seq, first 8 hex of its head hash) on a session's
    first screen, for the officer's paper log (docs/audit.md)."""
    seq, short = head
    screen["lines"].append("Audit trail: record %d, head %s" % (seq, short))
    screen["trail_seq"] = seq
    screen["trail_head"] = short
    return screen


def setup_create(head):
    return trail_head({"screen": "setup_create", "title": "Set up",
                       "lines": ["Create a new seed on this device?", "Reject to restore one from a backup"]}, head)


def create_length():
    return {"screen": "create_length", "title": "New seed", "lines": ["24 words (256 bits)?", "Reject for 12 words"]}


def create_dice():
    return {"screen": "create_dice", "title": "New seed", "lines": ["Add dice rolls to the device's randomness?",
                                                                 "Reject to use the device's alone"]}


def create_rolls(need, err):
    return _prompt("create_rolls", "Dice rolls", "Roll a die at least %d times: type each 1-6" % need, err, "dice")


def create_shamir():
    return {"screen": "create_shamir", "title": "New seed", "lines": ["Back it up as SLIP39 shares (Shamir)?",
                                                                   "Reject for one list of BIP39 words"]}


def create_number(name, line, err):
    return _prompt(name, "SLIP39 shares", line, err, "number")


def show_share(words, first, share, count):
    """A page of SLIP39 share `share` of `count` (secret, as show_words)."""
    screen = show_words(words, first, 20 if len(words) <= 20 else 33)
    screen["screen"] = "show_share"
    screen["share"] = share
    screen["title"] = "Share %d of %d: %s" % (share, count, screen["title"])
    return screen


def show_words(words, first, total):
    """A page of the new seed's words: never recorded, never sent (secret)."""
    lines = ["%d. %s" % (first + k + 1, w) for k, w in enumerate(words)]
    last = first + len(words) - 1
    return {"screen": "show_words", "title": "Words %d-%d of %d" % (first + 1, last + 1, total), "first": first,
            "last": last, "words": words, "lines": lines + ["Write them down, then approve"], "secret": True}


def check_word(position, err, share=None):
    what = "of your backup" if share is None else "of share %d" % share
    screen = _prompt("check_word", "Backup check", "Enter word %d %s" % (position, what), err,
                     "word" if share is None else "share_word")
    screen["position"] = position
    if share is not None:
        screen["share"] = share
    return screen


def backup_mismatch(position):
    return {"screen": "backup_mismatch", "title": "Backup check", "position": position,
            "lines": ["That is not word %d" % position, "Approve to see the words again"]}


def setup_kind():
    return {"screen": "setup_kind", "title": "Set up", "lines": ["Recover from SLIP39 shares (a Shamir backup)?",
                                                              "Reject to enter BIP39 recovery words"]}


def setup_share(n, err, of):
    """Share n of a SLIP39 recovery; `of` the shares needed, once the first told it (else None)."""
    line = "Enter share %d" % n + (" of %d" % of if of else "")
    screen = _prompt("setup_share", "Share %d" % n, line, err, "share")
    screen["share"] = n
    return screen


def setup_mnemonic(err):
    return _prompt("setup_mnemonic", "Recovery words", "Enter the 12 or 24 recovery words", err, "words")


def setup_pin(err):
    return _prompt("setup_pin", "Choose a PIN", "4 to 12 digits", err, "pin")


def setup_pin_confirm():
    return _prompt("setup_pin_confirm", "Confirm the PIN", "Enter it again", None, "pin")


def setup_passphrase():
    return _prompt("setup_passphrase", "Passphrase", "Enter the BIP39 passphrase, or nothing", None, "text")


def unlock_pin(err, left, head):
    """`left`: the attempts left before the seed is erased; `head`: the
    audit trail's (seq, head), shown at every unlock."""
    screen = _prompt("unlock_pin", "Enter PIN", "Unlock the device", err, "pin")
    screen["left"] = left
    return trail_head(screen, head)


def unlock_passphrase(err):
    return _prompt("unlock_passphrase", "Passphrase", "Enter the BIP39 passphrase", err, "text")


def pin_wait(left, seconds):
    return {"screen": "pin_wait", "title": "Wrong PIN", "left": left, "seconds": seconds,
            "lines": ["%d attempts left before the seed is erased" % left, "Wait %d s for the next try" % seconds]}


def confirm_pin(what, err, left):
    """The PIN again, before `what` (a backup check, a PIN change)."""
    screen = _prompt("confirm_pin", "Enter PIN", "To " + what, err, "pin")
    screen["left"] = left
    return screen


def new_pin(err):
    return _prompt("new_pin", "New PIN", "4 to 12 digits", err, "pin")


def check_words(err):
    return _prompt("check_words", "Backup check", "Enter the 12 or 24 recovery words of this device", err, "words")


def check_share(n, err, of):
    screen = setup_share(n, err, of)
    screen["screen"] = "check_share"
    screen["title"] = "Backup check: share %d" % n
    return screen


def backup_result(matches, what):
    return {"screen": "backup_result", "title": "Backup check", "matches": matches,
            "lines": [("The %s match this device's seed" if matches else "The %s do NOT match this device's seed") % what,
                      "Approve to go on"]}


def wipe_device(fingerprint):
    return {"screen": "wipe_device", "title": "Erase this device?", "fingerprint": fingerprint,
            "lines": ["Erase the seed of wallet " + fingerprint + " and its registered wallets",
                      "Only its backup can restore it", "Approve to erase"]}


def setup_check(fingerprint, network, log_key):
    """log_key: the audit trail's public key (hex) that signs its checkpoints."""
    from .audit import key_fingerprint

    fp = key_fingerprint(bytes.fromhex(log_key))
    return {"screen": "setup_check", "title": "Check the wallet", "fingerprint": fingerprint,
            "network": network, "log_key": log_key,
            "lines": ["Fingerprint " + fingerprint, "Network " + network, "Audit log key " + fp + ":"]
            + groups(log_key, 4, 6) + ["Approve if it is the one on record"]}


def audit_key(log_key, path):
    from .audit import key_fingerprint

    return {"screen": "audit_key", "title": "Audit log key", "log_key": log_key, "path": path,
            "lines": ["Fingerprint " + key_fingerprint(bytes.fromhex(log_key)), "Path " + path]
            + groups(log_key, 4, 6) + ["Compare with the auditor's record"]}


def audit_exported(seq, head, freed):
    return {"screen": "audit_exported", "title": "Audit trail exported?", "seq": seq, "head": head,
            "freed": freed,
            "lines": ["A host has the trail up to record %d, head %s" % (seq, head[:8]),
                      "Free %d bytes of records up to it?" % freed, "Approve only once the export is kept safe"]}


def seed_damaged(message):
    return {"screen": "seed_damaged", "title": "Stored records damaged",
            "lines": [message, "Erase it and set up again from the recovery words?"]}


# ---- requests


def display_address(address, path, unusual):
    lines = [address, "Path " + path]
    if unusual:
        lines.append("Warning: unusual path for this address type")
    return {"screen": "display_address", "title": "Address", "address": address, "path": path, "lines": lines}


# Shown as text only: printable ASCII, and newline, tab and carriage return
# written as \n, \t, \r (a backslash as \\), so that every text message
# has its own rendering; anything else (other control, direction or
# zero-width characters, any byte above 0x7e) is shown as hex under its own
# heading. The text is quoted (its first and last spaces show) and the
# length is shown: what the screen shows is one message only.
_ESCAPES = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x5C: "\\\\"}


def message_text(message):
    """(encoding, what the screen shows) of the bytes of a message to sign:
    ("text", its escaped text) or ("hex", its hex)."""
    if all(32 <= b < 127 or b in _ESCAPES for b in message):
        return "text", "".join([_ESCAPES.get(b) or chr(b) for b in message])
    from binascii import hexlify

    return "hex", hexlify(message).decode()


def sign_message(path, address, message, unusual):
    encoding, shown = message_text(message)
    n = len(message)
    if encoding == "text":
        lines = ["Text message, %d byte%s:" % (n, "" if n == 1 else "s"), '"' + shown + '"']
    else:
        lines = ["Binary message (not text), %d byte%s, in hex:" % (n, "" if n == 1 else "s"), shown]
    lines += ["with the key of " + address, "Path " + path]
    if unusual:
        lines.append("Warning: unusual path for this address type")
    return {"screen": "sign_message", "title": "Sign message?", "path": path, "address": address,
            "message": shown, "encoding": encoding, "length": n, "unusual": unusual, "lines": lines}


def review_tx(r):
    """The transaction review, from the review's summary (Summary.to_dict()):
    every output when they fit on one screen, else the totals (the outputs
    were paged through first, review_outputs)."""
    lines = []
    if r.get("wallet"):
        lines.append("From wallet " + r["wallet"])
    elif r.get("account"):
        lines.append("From this device's " + r["account"])
    if r.get("truncated"):
        lines.append("Send %s in %d outputs" % (btc(r["sent_sat"]), r["spends_count"]))
        if r["change_count"]:
            lines.append("Change %s in %d outputs" % (btc(r["change_sat"]), r["change_count"]))
    else:
        for s in r["spends"]:
            lines.append("Send %s to %s" % (btc(s["amount_sat"]), s["address"]))
        for c in r["change"]:
            lines.append("Change %s to %s" % (btc(c["amount_sat"]), c["address"]))
    lines.append("Fee %s (%s sat/vB)" % (btc(r["fee_sat"]), tenths(r["fee_rate_tenths"])))
    for w in r["warnings"]:
        lines.append("Warning: " + w)
    _anti_exfil_line(r, lines)
    screen = {"screen": "review_tx", "title": "Send bitcoin?", "lines": lines}
    for k in ("wallet", "account", "spends", "change", "spends_count", "change_count", "sent_sat", "change_sat",
              "fee_sat", "fee_rate_tenths", "warnings", "txid"):
        screen[k] = r[k]
    if "psbt_sha256" in r:
        screen["psbt_sha256"] = r["psbt_sha256"]
    if "anti_exfil" in r:
        screen["anti_exfil"] = r["anti_exfil"]
    if r.get("truncated"):
        screen["truncated"] = True
    return screen


def proof_of_reserves(r):
    """A BIP-322 proof of funds (review.Summary.to_dict() with "proof"): the
    message exactly as signed, the coins and their total; nothing is paid."""
    p = r["proof"]
    n = p["length"]
    lines = []
    if r.get("wallet"):
        lines.append("Wallet " + r["wallet"])
    elif r.get("account"):
        lines.append("This device's " + r["account"])
    if p["encoding"] == "text":
        lines += ["Message, text, %d byte%s:" % (n, "" if n == 1 else "s"), '"' + p["message"] + '"']
    else:
        lines += ["Message, binary (not text), %d byte%s, in hex:" % (n, "" if n == 1 else "s"), p["message"]]
    lines.append("%d coin%s, total %s" % (p["coins"], "" if p["coins"] == 1 else "s", btc(p["total_sat"])))
    lines.append("Proves control; moves nothing (BIP-322)")
    _anti_exfil_line(r, lines)
    screen = {"screen": "proof_of_reserves", "title": "Proof of reserves", "lines": lines, "proof": p,
              "wallet": r.get("wallet"), "account": r.get("account"), "txid": r.get("txid")}
    for k in ("psbt_sha256", "anti_exfil"):
        if k in r:
            screen[k] = r[k]
    return screen


def _anti_exfil_line(r, lines):
    """Tell the officer what protects the signatures from firmware that would
    leak the keys through them (r["anti_exfil"], when the request says)."""
    if "anti_exfil" not in r:
        return
    if not r["anti_exfil"]:
        lines.append("Anti-exfil: off (the host did not ask for it)")
    elif r.get("taproot"):
        lines.append("Anti-exfil: on; %d taproot input(s) signed without it" % r["taproot"])
    else:
        lines.append("Anti-exfil: on")


def _destination(d):
    n = d["outputs"]
    return "Send %s to %s%s" % (btc(d["amount_sat"]), d["address"], " (%d outputs)" % n if n > 1 else "")


def batch_destinations(entries, first, total):
    """One page of a batch's destinations (address totals over all its
    transactions), shown before the batch's totals."""
    last = first + len(entries) - 1
    return {"screen": "batch_destinations", "title": "Destinations %d-%d of %d" % (first, last, total),
            "first": first, "last": last, "total": total, "destinations": entries,
            "lines": [_destination(d) for d in entries]}


def review_batch(b, digests, paged):
    """The batch review (batch.Totals.to_dict()): approving it signs every
    transaction of the batch. `digests`: the SHA-256 of each PSBT, for the
    trail; `paged`: the destinations were paged through first."""
    from binascii import hexlify

    n = len(b["destinations"])
    lines = ["%d transactions, %d inputs to sign" % (b["transactions"], b["inputs"])]
    if paged:
        lines.append("Send %s to %d addresses" % (btc(b["sent_sat"]), n))
    else:
        lines.extend([_destination(d) for d in b["destinations"]])
    for c in b["change"]:
        lines.append("Change %s to %s" % (btc(c["amount_sat"]), c["to"]))
    lines.append("Total fee %s" % btc(b["fee_sat"]))
    for w in b["warnings"]:
        lines.append("Warning: " + w)
    _anti_exfil_line(b, lines)
    screen = {"screen": "review_batch", "title": "Sign %d transactions?" % b["transactions"], "lines": lines,
              "psbts": [hexlify(d).decode() for d in digests]}
    for k in ("transactions", "inputs", "outputs", "sent_sat", "fee_sat", "destinations", "change", "warnings"):
        screen[k] = b[k]
    return screen


def review_outputs(entries, total):
    """One page of a long transaction's outputs (Reviewer.outputs() entries),
    shown before its totals: approve goes on, reject refuses the transaction."""
    lines = []
    for e in entries:
        what = "Change" if e["change"] else "Send"
        lines.append("%d: %s %s to %s" % (e["n"], what, btc(e["amount_sat"]), e["address"]))
        if e.get("warning"):
            lines.append("Warning: " + e["warning"])
    first, last = entries[0]["n"], entries[-1]["n"]
    return {"screen": "review_outputs", "title": "Outputs %d-%d of %d" % (first, last, total), "first": first,
            "last": last, "total": total, "outputs": entries, "lines": lines}


def policy_text(kind, threshold, n, is_sorted):
    return "%d of %d, %s%s" % (threshold, n, KINDS.get(kind, kind), ", sorted keys" if is_sorted else "")


def _short(xpub):
    return xpub[:8] + "..." + xpub[-6:]


def groups(text, size=4, per_line=5):
    """Text in groups of `size` characters, `per_line` groups a line: every
    character shown, in pieces an officer can compare with a paper record."""
    cut = [text[i : i + size] for i in range(0, len(text), size)]
    return [" ".join(cut[i : i + per_line]) for i in range(0, len(cut), per_line)]


def register_cosigner(n, total, c):
    """One cosigner's page of a wallet registration (n None: a taproot internal
    key): the whole key, its fingerprint and origin. Approve goes on, reject
    refuses the wallet."""
    lines = ["Fingerprint " + c["fingerprint"], "Path " + c["path"]]
    lines += groups(c["xpub"])
    if c["ours"]:
        lines.append("This device's key")
    title = "Internal key (spends alone)" if n is None else "Cosigner %d of %d" % (n, total)
    return {"screen": "register_cosigner", "title": title, "n": n, "total": total,
            "fingerprint": c["fingerprint"], "path": c["path"], "xpub": c["xpub"], "ours": c["ours"],
            "lines": lines}


def register_wallet(name, policy, threshold, cosigners, internal_can_spend):
    """cosigners: [{"fingerprint": hex, "path", "xpub", "ours"}] in order.
    The first page: each key shortened here, shown whole on its own page next."""
    lines = ["Wallet " + name, "Policy " + policy]
    if internal_can_spend:
        lines.append("Warning: the internal key can spend alone (key path)")
    for i, c in enumerate(cosigners):
        lines.append("%d: [%s %s] %s%s" % (i + 1, c["fingerprint"], c["path"], _short(c["xpub"]),
                                           " (this device)" if c["ours"] else ""))
    return {"screen": "register_wallet", "title": "Register wallet?", "name": name, "policy": policy,
            "threshold": threshold, "cosigners": cosigners, "lines": lines}


def delete_wallet(name):
    return {"screen": "delete_wallet", "title": "Delete wallet?", "name": name,
            "lines": ["Delete wallet " + name + "?", "Its coins stay where they are."]}


def wallet_address(name, change, index, address):
    return {"screen": "wallet_address", "title": "Address", "wallet": name, "address": address,
            "change": change, "index": index,
            "lines": ["Wallet " + name, "%s address %d" % ("Change" if change else "Receive", index), address]}


def set_limits(old, new):
    return {"screen": "set_limits", "title": "Change fee limits?", "old": old, "new": new,
            "lines": ["Fee limit %s%% -> %s%% of the amount sent" % (tenths(old["fee_percent_tenths"]),
                                                                    tenths(new["fee_percent_tenths"])),
                      "Fee limit %d -> %d sat" % (old["fee_max_sat"], new["fee_max_sat"])]}

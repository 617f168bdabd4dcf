"""The device application: request loop, dispatch, setup and unlock.

Driven only through the board object (channels, flash, screens, buttons), so
that the same code runs on the ESP32 and in the emulator, and tests can
drive it with a board of their own.
"""

import gc
import os
from binascii import hexlify

from embit import bip39

from . import capacity, handlers, rpc, screens
from . import audit
from .batch import Batch
from .errors import (BadParams, Busy, CheckpointDue, DeviceError, InternalError, NotReady, Rejected, StorageError,
                     TrailFull, UnknownMethod)
from .framing import ticks_diff
from .keystore import Keystore
from .link import Link
from .secrets import wipe
from .spool import Upload
from .storage import MAX_PIN_ATTEMPTS, Storage, WrongPin, check_pin_format, pin_delay_ms
from .ui import APPROVE, REJECT, UI

FIRMWARE_VERSION = "0.3.0"
WORDS_A_PAGE = 4  # of a new seed, on the device's screen
CHECKED_WORDS = 3  # typed back at random positions before setup goes on
PROTOCOL_VERSION = 1
# The largest request the device takes (docs/protocol.md): a psbt_chunk of
# spool.CHUNK bytes and its envelope. Answers may be up to framing.MAX_PAYLOAD;
# a receive buffer of that size would hold 4 KB of a 128 KiB heap for nothing.
REQUEST_MAX_PAYLOAD = 4608
DEBUG_MAX_PAYLOAD = 1024  # a DebugLink request: a button, a key, a line of text


# Between anti-exfil's two rounds the host uploads the second PSBT, reads
# the first answer and may ask how the device is: anything else ends the
# round, as does a wait of more than AE_ROUND_MS (a host gone away).
AE_ROUND_KEEPS = ("ping", "info", "prompt", "cancel", "psbt_begin", "psbt_chunk", "psbt_end", "psbt_read",
                  "sign_psbt", "audit_read", "batch_add", "sign_batch")
AE_ROUND_MS = 300_000


class App:
    def __init__(self, board):
        self.board = board
        board.mount_flash()
        root = board.flash_root
        self.storage = Storage(root, board.device_hmac)
        self.serial = Link(board.serial, board, REQUEST_MAX_PAYLOAD)
        # DebugLink requests are a button, a key or a line of text: a small
        # frame buffer (a full one would hold 8 KB of the heap for nothing).
        self.debug = Link(board.debug, board, DEBUG_MAX_PAYLOAD) if board.debug is not None else None
        self.ui = UI(self)
        self.trail = audit.Trail(board)
        self.trail.key = self._log_key_fingerprint()
        lost = self.trail.power_loss_record()
        if lost is not None:
            self.record(lost)
        self.request_path = root + "/request"  # the request under way, for the next start to tell if cut off
        self._record_interrupted()
        self.record({"screen": "boot", "title": "Device started", "firmware": FIRMWARE_VERSION,
                     "board": board.name, "lines": ["Amanat %s on %s" % (FIRMWARE_VERSION, board.name)]})
        self.keystore = None
        self._registry = None
        self.busy = None
        self.progress = None  # (done, total) of the request under way
        self.upload = Upload(root + "/upload.psbt")
        self.signed_path = root + "/signed.psbt"
        self.batch = Batch(root)
        self.batch.clear()  # a batch does not outlive a restart: its files would only hold flash
        self.batch_at = None  # [PSBT, of] of the batch being reviewed or signed
        self.signed_length = None
        self.ae_spool_path = root + "/ae.round"
        self.ae_round = None  # an anti-exfil first round waiting for its second (handlers.sign_psbt)
        self.checkpoint_round = None  # a checkpoint's first round (handlers.audit_checkpoint)
        self.drop_ae_round()  # nor does a round: its spool would only hold flash
        self.read_buf = None  # the download's chunk buffer (handlers.psbt_read)
        self.heap = capacity.Heap(board.measure_heap)
        # The signing code, loaded now, before any request: module objects
        # live as long as the device, and allocated first they sit together
        # at the heap's start instead of splitting it between requests.
        from . import anti_exfil, psbt_signer, review, wallet_methods, wallets  # noqa: F401

        self.heap.imported()

    # ---- main loop
    def run(self):
        while True:
            try:
                if self.keystore is None:
                    if self.storage.initialized():
                        self.unlock()
                    else:
                        self.setup()
                    continue
                self.board.wait(1000)
                self.pump(None)
                self.upload.expire(self.board.ticks_ms())
                self.expire_ae_round(self.board.ticks_ms())
            except Exception as e:  # the device stays up, whatever happened
                self.board.log_exception(e)
                gc.collect()

    def pump(self, busy, done=None, total=None):
        """Handle what arrived on the serial line and DebugLink. With `busy`
        set (a screen waiting, a signature in progress) only ping and info are
        served; anything else is answered BUSY (or NOT_READY before unlock).
        `done` of `total` is the progress ping reports."""
        if busy is not None:
            self.heap.sample(busy)
            self.progress = None if done is None else (done, total)
        while not self.ui.answered():
            payload = self.serial.next()
            if payload is None:
                break
            self._serve(self.serial, payload, busy)
        while self.debug is not None and not self.ui.answered():
            payload = self.debug.next()
            if payload is None:
                break
            self._serve_debug(payload)

    def _serve(self, link, payload, busy):
        rid = None
        try:
            rid, method, params = rpc.parse_request(payload)
            if method == "ping":
                res = {"busy": busy, "progress": self._progress(busy)}
                if busy is not None and self.batch_at is not None:
                    res["batch"] = self.batch_at
                answer = rpc.result(rid, res)
            elif method == "info":
                answer = rpc.result(rid, self.info())
            elif method == "prompt":
                answer = rpc.result(rid, {"prompt": self._prompt()})
            elif method == "cancel" and busy is not None:
                answer = rpc.result(rid, {"cancelled": self.ui.cancel("the host cancelled the request")})
            elif busy is not None:
                if self.keystore is None:
                    raise NotReady("the device is not set up or not unlocked (%s)" % busy)
                if self.ui.current is not None:
                    raise Busy("the device is busy: %s waits for the officer: answer or reject it on the "
                               "device (or stop the command that sent it)" % busy)
                raise Busy("the device is busy: %s; try again when it is done" % busy)
            else:
                # A request sent again (its answer was lost on the line) gets
                # the same answer, without a second prompt or a second effect.
                answer = link.replay(rid, payload)
                if answer is None:
                    answer = self._run(rid, method, params)
                    if method not in handlers.READS:
                        link.remember(rid, payload, answer)
            link.send(answer)
        except DeviceError as e:
            link.send(rpc.error(getattr(e, "request_id", rid), e))
        except MemoryError as e:
            gc.collect()
            self.board.log_exception(e)
            link.send(rpc.error(rid, InternalError("out of memory")))

    def _run(self, rid, method, params):
        """The answer (a message) of one request to a handler; whatever the
        handler raises becomes a typed error, the device carries on."""
        try:
            entry = handlers.METHODS.get(method)
            if entry is None:
                raise UnknownMethod("unknown method %r" % rpc.clip(method))
            if self.keystore is None:
                raise NotReady("the device is not set up or not unlocked")
            fn, allowed = entry
            if method not in AE_ROUND_KEEPS:
                self.drop_ae_round()  # the host went on to something else: the round is over
            if method in handlers.GATED and not (isinstance(params, dict) and params.get("anti_exfil") == "reveal"):
                self._check_trail(method)  # (a second round finishes what its first was let through for)
            gc.collect()  # a clean heap before the real work: fragmentation, not size, fails first
            self.busy = method
            self.progress = None
            recorded = method in handlers.RECORDED
            if recorded:
                self._mark_request(method)
            try:
                return rpc.result(rid, fn(self, rpc.Params(params, allowed)))
            finally:
                self.busy = None
                self.progress = None
                self.batch_at = None
                if recorded:
                    self._mark_request(None)
        except DeviceError as e:
            self._record_refusal(method, params, e)
            return rpc.error(rid, e)
        except MemoryError as e:
            gc.collect()
            self.board.log_exception(e)
            return rpc.error(rid, InternalError("out of memory"))
        except Exception as e:
            self.board.log_exception(e)
            return rpc.error(rid, InternalError("internal error: %s" % e.__class__.__name__))

    def _prompt(self):
        """The yes/no screen waiting for the officer, as the board shows it
        (name, title, lines: what the trail records, no secret), or None.
        Text prompts (words, PIN) are not shown off the device."""
        cur = self.ui.current
        if cur is None or cur.get("kind") != "confirm" or cur.get("secret"):
            return None  # a secret screen (the new seed's words) is for the device's screen alone
        return {"screen": cur["screen"], "title": cur.get("title", ""), "lines": list(cur.get("lines", []))}

    def _progress(self, busy):
        """[done, total] of the work under way: inputs and outputs reviewed,
        inputs signed, or (idle) the bytes of an upload received."""
        if busy is None and self.upload.length and self.upload.sha256 is None and self.upload.active():
            return [self.upload.received, self.upload.length]
        return list(self.progress) if busy is not None and self.progress is not None else None

    def ae_spool(self, k):
        """The round spool of PSBT k of a batch's anti-exfil round."""
        return "%s.%d" % (self.ae_spool_path, k)

    def drop_ae_round(self):
        self.ae_round = None
        for path in [self.ae_spool_path] + [self.ae_spool(k) for k in range(capacity.BATCH_PSBTS)]:
            try:
                os.remove(path)
            except OSError:
                pass

    def expire_ae_round(self, now):
        r = self.ae_round
        if r is not None and ticks_diff(now, r["at"]) > AE_ROUND_MS:
            self.drop_ae_round()

    def drop_signed(self):
        self.signed_length = None
        try:
            os.remove(self.signed_path)
        except OSError:
            pass

    def record(self, record):
        """Append a record (an answered screen, an event) to the audit trail."""
        self.trail.append(record)

    # ---- the audit trail (audit.py, docs/audit.md)
    def _log_key_fingerprint(self):
        try:
            key = self.storage.settings().get("log_key")
        except StorageError:
            return None  # said so at unlock (seed_damaged)
        return audit.key_fingerprint(bytes.fromhex(key)) if key else None

    def log_key(self):
        """The audit trail's key (an embit HDKey) of the unlocked seed."""
        return self.keystore.root.derive(audit.LOG_KEY_PATH)

    def _check_trail(self, method):
        """Requests that sign or change the device wait for an export when the
        trail is full (fail closed: nothing is dropped) and for a checkpoint
        when too many records are unsigned."""
        t = self.trail
        if t.full():
            raise TrailFull("the audit trail is full (%d of %d bytes): export it (amanat audit export --free) and "
                            "acknowledge the export on the device before %s" % (t.used(), t.capacity, method))
        if t.unsigned() >= audit.CHECKPOINT_EVERY:
            raise CheckpointDue("%d audit records since the last checkpoint: sign one (audit_checkpoint) before %s"
                                % (t.unsigned(), method))

    def trail_warning(self):
        """The warning that the trail is nearly full, or None."""
        p = self.trail.percent()
        if p < audit.WARN_PERCENT:
            return None
        return "audit trail %d%% full: export it (amanat audit export --free) before it stops signing" % p

    def _mark_request(self, method):
        """Keep the name of the request under way in flash (None: it ended)."""
        try:
            if method is None:
                os.remove(self.request_path)
            else:
                with open(self.request_path, "w") as f:
                    f.write(method)
        except OSError:
            pass  # the marker only tells the next start; the request goes on

    def _record_interrupted(self):
        try:
            with open(self.request_path) as f:
                method = f.read()
        except OSError:
            return
        self.record({"screen": "interrupted", "title": "A request was cut off", "method": method,
                     "lines": ["%s did not finish: the device lost power or restarted" % method,
                               "Nothing was signed after its review unless its answer says so"]})
        self._mark_request(None)

    def _record_refusal(self, method, params, e):
        """A refused request that signs or changes the device, with its reason
        (an officer's rejection is already its screen's record; a due
        checkpoint is the host's to sign; a full trail is recorded once a start)."""
        if method not in handlers.RECORDED or isinstance(e, (Rejected, CheckpointDue)):
            return
        if isinstance(e, TrailFull):
            if self.trail.refused_full:
                return
            self.trail.refused_full = True
        rec = {"screen": "refused", "method": method, "code": e.name, "reason": e.message}
        digest = params.get("sha256") if isinstance(params, dict) else None
        if isinstance(digest, (bytes, bytearray)) and len(digest) == 32:
            rec["psbt_sha256"] = hexlify(digest).decode()
        try:
            self.record(rec)
        except Exception as x:  # the refusal is answered all the same
            self.board.log_exception(x)

    def record_pin(self, purpose, outcome, left=None):
        """A PIN entry's outcome: "right", "wrong" or "wiped" (the last attempt)."""
        rec = {"screen": "pin", "for": purpose, "outcome": outcome}
        if left is not None:
            rec["left"] = left
        self.record(rec)

    def record_wiped(self, why):
        self.record({"screen": "wiped", "title": "Seed erased", "reason": why})
        self.trail.key = None

    def info(self):
        ks = self.keystore
        settings = self.storage.settings()
        return {
            "firmware": FIRMWARE_VERSION,
            "protocol": PROTOCOL_VERSION,
            "model": self.board.model,
            "network": settings.get("network"),
            "initialized": self.storage.initialized(),
            "locked": ks is None,
            "fingerprint": ks.fingerprint if ks else None,
            "target": self.board.name,
            "heap": self.heap.to_dict(),
            "limits": capacity.limits(self.board.flash_root),
            "anti_exfil": "ecdsa_s2c",  # sign_psbt's two rounds (docs/protocol.md, "Anti-exfil")
            "trail": self._trail_info(settings),
        }

    def _trail_info(self, settings):
        t = self.trail.to_dict()
        t["log_key"] = settings.get("log_key")  # public: what the checkpoints verify under
        t["warning"] = self.trail_warning()
        return t

    # ---- DebugLink (emulator only: the board decides whether it exists)
    def _serve_debug(self, payload):
        rid = None
        try:
            rid, method, params = rpc.parse_request(payload)
            entry = DEBUG_METHODS.get(method)
            if entry is None:
                raise UnknownMethod("unknown DebugLink method %r" % rpc.clip(method))
            fn, allowed = entry
            res = fn(self, rpc.Params(params, allowed))
            self.debug.send(rpc.result(rid, res))
        except DeviceError as e:
            self.debug.send(rpc.error(getattr(e, "request_id", rid), e))
        except Exception as e:
            self.board.log_exception(e)
            self.debug.send(rpc.error(rid, InternalError("internal error: %s" % e.__class__.__name__)))

    # ---- first start and unlock
    def setup(self):
        # Not auto-approved: the emulator's launcher (or the officer) answers them.
        if self.ui.confirm(screens.setup_create(self.trail.head()), auto=False):
            secret, meta = self._create()
        elif self.ui.confirm(screens.setup_kind(), auto=False):
            secret, meta = self.recover_shares(screens.setup_share)
        else:
            secret, meta = self._enter_words(), None
        pin = self.choose_pin(screens.setup_pin)
        passphrase = self.ui.ask_text(screens.setup_passphrase())
        try:
            network = self.board.default_network
            self._load(secret, passphrase, network, meta)
            # The fingerprint identifies words + passphrase together: a typo in
            # the passphrase (typed once, masked) shows here as a strange one.
            fp = hexlify(self.keystore.fingerprint).decode()
            log_key = hexlify(self.log_key().key.sec()).decode()
            if not self.ui.confirm(screens.setup_check(fp, network, log_key)):
                self.keystore = None
                return  # nothing stored: setup starts again
            self.storage.store_seed(secret, pin, network, len(passphrase) > 0, fp, slip39=meta, log_key=log_key)
            self.trail.key = audit.key_fingerprint(bytes.fromhex(log_key))
            self.record({"screen": "setup", "title": "Seed stored", "fingerprint": fp, "network": network,
                         "backup": "slip39" if meta else "bip39", "passphrase": len(passphrase) > 0,
                         "log_key": log_key, "log_key_path": audit.LOG_KEY_PATH})
        finally:
            wipe(secret)
            wipe(pin)
            wipe(passphrase)

    def _create(self):
        """New BIP39 entropy: the board's RNG, mixed (SHA-256) with dice rolls
        if the officer adds them; the words shown page by page on the device
        alone, then checked back at positions picked at random until they
        match. The entropy (a bytearray the caller wipes)."""
        import hashlib

        n = 32 if self.ui.confirm(screens.create_length(), auto=False) else 16
        shamir = self._shares_wanted()
        mix = hashlib.sha256(os.urandom(32))
        if self.ui.confirm(screens.create_dice(), auto=False):
            need = 99 if n == 32 else 50  # log2(6) = 2.58 bits a roll
            err = None
            while True:
                rolls = self.ui.ask_text(screens.create_rolls(need, err))
                try:
                    if len(rolls) >= need:
                        mix.update(rolls)
                        break
                    err = "%d rolls: at least %d" % (len(rolls), need)
                finally:
                    wipe(rolls)
        entropy = bytearray(mix.digest()[:n])
        if shamir is not None:
            return self._create_shares(entropy, *shamir)
        while True:
            words = bip39.mnemonic_from_bytes(bytes(entropy)).split()  # str: shown, then dropped
            for first in range(0, len(words), WORDS_A_PAGE):
                while not self.ui.confirm(screens.show_words(words[first : first + WORDS_A_PAGE], first, len(words)),
                                          auto=False):
                    pass  # a page is approved once written down
            if self._words_checked(words):
                words = None
                return entropy, None

    def _shares_wanted(self):
        """(threshold, count) if the officer backs the new seed up as SLIP39
        shares (one group), else None."""
        if not self.ui.confirm(screens.create_shamir(), auto=False):
            return None
        err = None
        while True:
            count = self._number(screens.create_number("create_count", "How many shares (2-16)?", err))
            threshold = self._number(screens.create_number("create_threshold", "How many recover it (2-%d)?"
                                                           % max(count, 2), None))
            if 2 <= threshold <= count <= 16:
                return threshold, count
            err = "%d of %d shares: 2 <= recover <= shares <= 16" % (threshold, count)

    def _number(self, screen):
        text = self.ui.ask_text(screen)
        try:
            return int(bytes(text).decode()) if len(text) else 0
        finally:
            wipe(text)

    def _create_shares(self, master, threshold, count):
        """SLIP39 shares of the new master secret (the BIP32 seed), each shown
        and checked back; (encrypted master secret, meta) as a recovery gives."""
        from .slip39 import Recovery, split

        try:
            shares = split(bytes(master), threshold, count, b"", exponent=1, extendable=True)
        finally:
            wipe(master)
        for k, share in enumerate(shares):
            while True:
                for first in range(0, len(share), WORDS_A_PAGE):
                    while not self.ui.confirm(screens.show_share(share[first : first + WORDS_A_PAGE], first, k + 1,
                                                                 count), auto=False):
                        pass
                if self._words_checked(share, k + 1):
                    break
        r = Recovery()
        for share in shares[:threshold]:
            r.add(" ".join(share))
        shares = None
        ems, identifier, extendable, exponent = r.encrypted_secret()
        return bytearray(ems), (identifier, extendable, exponent)

    def _words_checked(self, words, share=None):
        """The officer types CHECKED_WORDS words at random positions: True if all match."""
        positions = []
        while len(positions) < CHECKED_WORDS:
            k = os.urandom(1)[0] % len(words)
            if k not in positions:
                positions.append(k)
        for k in positions:
            typed = self.ui.ask_text(screens.check_word(k + 1, None, share))
            try:
                if bytes(typed) != words[k].encode():
                    self.ui.confirm(screens.backup_mismatch(k + 1), auto=False)
                    return False
            finally:
                wipe(typed)
        return True

    def _enter_words(self):
        """BIP39 entropy of the recovery words the officer types."""
        err = None
        while True:
            words = self.ui.ask_text(screens.setup_mnemonic(err))
            try:
                return bytearray(bip39.mnemonic_to_bytes(" ".join(words.decode().split())))
            except Exception:
                err = "Invalid words or checksum, try again"
            finally:
                wipe(words)

    def recover_shares(self, prompt):
        """(encrypted master secret, (identifier, extendable, exponent)) of
        the SLIP39 shares the officer types, each checked as it comes: a
        mistyped one, one of another backup or a duplicate is named at once
        and typed again. The passphrase decrypts the secret at each unlock."""
        from .slip39 import Recovery, ShareError

        err = None
        while True:
            r = Recovery()
            while not r.complete():
                of = r.first.member_threshold if r.first is not None and r.first.group_threshold == 1 else None
                text = self.ui.ask_text(prompt(r.count + 1, err, of))
                try:
                    r.add(text.decode())
                    err = None
                except ShareError as e:
                    err = e.message
                finally:
                    wipe(text)
            try:
                ems, identifier, extendable, exponent = r.encrypted_secret()
                return bytearray(ems), (identifier, extendable, exponent)
            except ShareError as e:
                # the shares agree but do not recover (one is wrong): from share 1 again
                err = e.message + "; start again"

    def forget_seed(self):
        """The seed is gone (wiped, or erased after the last wrong PIN): the
        keys leave RAM and the device starts its setup."""
        self.keystore = None
        self._registry = None
        gc.collect()

    def choose_pin(self, prompt):
        """A new PIN typed twice (prompt(err): the first screen)."""
        err = None
        while True:
            pin = self.ui.ask_text(prompt(err))
            err = check_pin_format(pin)
            if err:
                wipe(pin)
                continue
            again = self.ui.ask_text(screens.setup_pin_confirm())
            same = again == pin
            wipe(again)
            if same:
                return pin
            wipe(pin)
            err = "The PINs differ, try again"

    def unlock(self):
        err = None
        try:
            self.storage.check_record()  # a record no PIN can open is said so before any PIN is asked for
        except StorageError as e:
            self._damaged_seed(e)
            return
        while self.keystore is None and self.storage.initialized():
            try:
                failures = self.storage.pin_failures()
            except StorageError as e:
                self._damaged_seed(e)
                return
            delay = pin_delay_ms(failures) // self.board.clock_speed
            if delay:
                self.ui.pause(screens.pin_wait(MAX_PIN_ATTEMPTS - failures, pin_delay_ms(failures) // 1000), delay)
            pin = self.ui.ask_text(screens.unlock_pin(err, MAX_PIN_ATTEMPTS - failures, self.trail.head()))
            try:
                entropy, meta = self.storage.unseal(pin)
            except WrongPin as e:
                err = str(e)
                wiped = not self.storage.initialized()
                self.record_pin("unlock", "wiped" if wiped else "wrong", e.left)
                if wiped:
                    self.record_wiped("the last PIN attempt was wrong")
                continue
            except StorageError as e:
                self._damaged_seed(e)
                return
            finally:
                wipe(pin)
            self.record_pin("unlock", "right")
            try:
                self._unlock_with_passphrase(entropy, meta)
            finally:
                wipe(entropy)
            if self.keystore is not None:
                self._keep_log_key()

    def _keep_log_key(self):
        """A seed stored before the trail had a key gets it now."""
        settings = self.storage.settings()
        key = hexlify(self.log_key().key.sec()).decode()
        if settings.get("log_key") != key:
            settings["log_key"] = key
            self.storage.save_settings(settings)
        self.trail.key = audit.key_fingerprint(bytes.fromhex(key))

    def _unlock_with_passphrase(self, entropy, meta=None):
        # The fingerprint kept at setup tells a mistyped passphrase (another
        # wallet entirely) from the right one before anything is signed.
        settings = self.storage.settings()
        want = settings.get("fingerprint")
        err = None
        while True:
            passphrase = bytearray()
            if self.storage.passphrase_used():
                passphrase = self.ui.ask_text(screens.unlock_passphrase(err))
            try:
                self._load(entropy, passphrase, settings.get("network", "main"), meta)
            finally:
                wipe(passphrase)
            got = hexlify(self.keystore.fingerprint).decode()
            if want is None or got == want or not self.storage.passphrase_used():
                return
            self.keystore = None
            err = "This passphrase opens another wallet (%s), not %s" % (got, want)

    def _damaged_seed(self, e):
        # Nothing can unlock a damaged record: the officer may erase it and
        # restore from the recovery words; until then the device stays locked.
        if self.ui.confirm(screens.seed_damaged(e.message), auto=False):
            self.storage.erase()
            self.record_wiped("the stored records were damaged: " + e.message)

    def _load(self, entropy, passphrase, network, meta=None):
        ks = Keystore(network)
        ks.load_sealed(entropy, meta, passphrase)
        self.keystore = ks
        self._registry = None
        gc.collect()

    def registry(self):
        """The registered multisig wallets in flash (opened on first use)."""
        if self._registry is None:
            from .wallets import Registry

            self._registry = Registry(self.board.flash_root, self.keystore, self.keystore.network)
        return self._registry


# ---- DebugLink methods: (function, allowed params) as in handlers.METHODS


def debug_state(app, p):
    return {"screen": app.ui.current, "busy": app.busy, "input": app.ui.input_lines()}


def debug_press(app, p):
    button = p.text("button")
    if button not in (APPROVE, REJECT):
        raise BadParams("button must be 'approve' or 'reject'")
    _done(app.ui.press(button))
    return {}


def debug_key(app, p):
    """The two-button text entry, key by key."""
    key = p.text("key")
    if key not in ("next", "prev", "select", "delete"):
        raise BadParams("key must be 'next', 'prev', 'select' or 'delete'")
    _done(app.ui.key(key))
    return {}


def debug_input(app, p):
    _done(app.ui.type_text(p.text("text")))
    return {}


def _done(why):
    if why:
        raise NotReady(why)


DEBUG_METHODS = {
    "debug_state": (debug_state, ()),
    "debug_press": (debug_press, ("button",)),
    "debug_key": (debug_key, ("key",)),
    "debug_input": (debug_input, ("text",)),
}

"""Screens as data, and waiting for the officer's answer.

A screen is a dict: {"screen": name, "title": text, "lines": [text], ...}
plus any structured fields (the transaction review carries spends, change,
fee). The board draws it (or, in the emulator, keeps it for DebugLink); the
answer comes from the board's buttons, from DebugLink in the emulator, or
at once with auto-confirm. While waiting, the request loop keeps running so
that the host can ping. Every answered screen is recorded with its answer;
text answers (words, PINs) are never recorded, only that text was given.

Screens are built by screens.py. A text prompt says what it wants in
screen["entry"] ("words", "pin" or "text") and runs a TextEntry of that kind:
the board's `key()` (the ESP32's buttons) types with it, and the board gets
the entry's lines through `show_input()` after each key; the emulator takes
the same keys over DebugLink, or the whole text at once.
"""

from .errors import Rejected
from .text_entry import TextEntry

APPROVE = "approve"
REJECT = "reject"
CANCELLED = "cancelled"
# A prompt for a host's request is taken down when the host has sent nothing
# for this long: hosts ping every second while they wait (docs/protocol.md).
HOST_GONE_MS = 15000


def _recordable(screen):
    """What the trail keeps of a screen: all of it, but of a secret one (the
    new seed's words) only its name, title and what page it was."""
    if not screen.get("secret"):
        return dict(screen)
    return {k: screen[k] for k in ("screen", "title", "first", "last", "secret", "kind") if k in screen}


class UI:
    def __init__(self, app):
        self.app = app
        self.board = app.board
        self.current = None
        self._answer = None
        self._text = None
        self._entry = None
        self._cancelled = None  # why the prompt was taken down without the officer

    def _show(self, screen, kind):
        screen["kind"] = kind
        self.current = screen
        self._answer = None
        self._text = None
        self._cancelled = None
        self.board.show(screen)

    def _wait(self):
        board = self.board
        try:
            while self._answer is None:
                board.wait(50)
                self.app.pump(self.current["screen"])
                if self.app.busy is not None and self.app.serial.silent_ms() > HOST_GONE_MS:
                    self.cancel("the host stopped waiting (nothing heard for %d s)" % (HOST_GONE_MS // 1000))
                if self._entry is not None:
                    k = board.key()
                    if k is not None and self._answer is None:
                        self.key(k)
                else:
                    pressed = board.buttons()
                    if pressed is not None and self._answer is None and self.current["kind"] == "confirm":
                        self._answer = pressed
        except BaseException:
            # The request died while its screen waited: take the screen
            # down (never leave a prompt nobody is waiting for) and log it.
            record = _recordable(self.current)
            record["answer"] = None
            self.current = None
            self.app.record(record)
            raise
        screen, self.current = self.current, None
        return screen

    def confirm(self, screen, auto=True):
        """Show a screen that asks yes/no; True if the officer approved.
        auto=False: never approved by the emulator's auto-confirm (erasing)."""
        self._show(screen, "confirm")
        if self.board.auto_confirm and auto:
            self._answer = APPROVE
        screen = self._wait()
        record = _recordable(screen)
        record["answer"] = self._answer if self._cancelled is None else CANCELLED
        if self._cancelled is not None:
            record["cancelled"] = self._cancelled
        self.app.record(record)
        return self._answer == APPROVE

    def require(self, screen, refusal):
        """Show a yes/no screen; Rejected(refusal) unless the officer approves
        (Rejected naming why, when the prompt was cancelled)."""
        if not self.confirm(screen):
            raise Rejected(refusal if self._cancelled is None else "cancelled: %s" % self._cancelled)

    def cancel(self, why):
        """Take down the yes/no prompt of a host's request, as rejected; True
        if there was one. Setup and unlock prompts belong to the officer alone."""
        if self.current is None or self.current["kind"] != "confirm" or self._answer is not None:
            return False
        if self.app.busy is None:
            return False
        self._cancelled = why
        self._answer = REJECT
        return True

    def pause(self, screen, ms):
        """Show a screen that asks nothing (a PIN delay) for `ms` of the
        device's clock; the request loop keeps answering meanwhile."""
        from .framing import ticks_diff

        self._show(screen, "wait")
        start = self.board.ticks_ms()
        try:
            while ticks_diff(self.board.ticks_ms(), start) < ms:
                self.board.wait(50)
                self.app.pump(screen["screen"])
        finally:
            self.current = None

    def ask_text(self, screen):
        """Show a text prompt (recovery words, PIN); the text typed, as a
        bytearray so that the caller can wipe it."""
        entry = TextEntry(screen.get("entry") or "text")
        self._show(screen, "text")
        self._entry = entry
        try:
            self._show_input()
            screen = self._wait()
        finally:
            self._entry.wipe()
            self._entry = None
        record = dict(screen)
        record["answer"] = "text"
        self.app.record(record)
        text, self._text = self._text, None
        return text

    def input_lines(self):
        """What the text entry shows now (DebugLink), or None."""
        return self._entry.lines() if self._entry is not None else None

    def _show_input(self):
        self.board.show_input(self._entry.lines())

    def answered(self):
        """A prompt got its answer and has not been taken down yet: the loop
        must let the prompt's owner run before serving more requests."""
        return self.current is not None and self._answer is not None

    # DebugLink (emulator) and buttons
    def press(self, button):
        if self.current is None or self.current["kind"] != "confirm":
            return "no yes/no prompt on screen"
        self._answer = button
        return None

    def key(self, event):
        """One key of the text entry: "next", "prev", "select", "delete"."""
        if self._entry is None or self._answer is not None:
            return "no text prompt on screen"
        if self._entry.handle(event):
            self._text = self._entry.value
            self._answer = "text"
        else:
            self._show_input()
        return None

    def type_text(self, text):
        if self.current is None or self.current["kind"] != "text":
            return "no text prompt on screen"
        self._text = bytearray(text.encode())
        self._answer = "text"
        return None

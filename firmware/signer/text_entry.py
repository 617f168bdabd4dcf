"""Typing text with two buttons: recovery words, a PIN, a passphrase.

Pure logic, no hardware. The board turns its buttons into four events and
draws the two lines that `lines()` returns (each at most 15 characters):
the text so far, and the wheel of choices around the cursor.

- "next" / "prev": move the cursor round the wheel (it wraps);
- "select": take the choice under the cursor: a character, or DEL, DONE,
  NEXT (next word) or a page of characters;
- "delete": take back the last thing chosen (what DEL on the wheel does).
On the T-Display: right short = next, left short = prev, right held =
select, left held = delete.

Kinds:
- "words" (BIP39, English): the wheel holds only the letters that continue
  some word. Letters that every remaining word shares are filled in, so a
  prefix that fits one word becomes that word. With a whole word typed the
  wheel starts on NEXT, or on DONE when there are 12, 15, 18, 21 or 24 words.
  DONE checks the checksum and, if it is wrong, says so and keeps the words
  for correcting. delete takes back the last letter the officer chose along
  with what was filled in after it; at the start of a word it goes back into
  the previous word.
- "share" (a SLIP-0039 share): the same, with SLIP-0039's word list; DONE at
  20 or 33 words, after its RS1024 checksum.
- "word", "share_word": one BIP39 or SLIP39 word (a backup check), DONE once it is whole.
- "dice": die rolls, 1 to 6 each, up to 200; the text line counts them.
- "number": one or two digits (how many shares, and how many recover).
- "pin": 4 to 12 digits. Each digit's wheel starts on a random digit, so
  that someone counting the presses learns nothing; digits typed show as
  '*' and the wheel shows only the digit under the cursor.
- "text" (the passphrase): printable ASCII, may be empty, shown as '*'.
  The wheel is one page (a-z, A-Z, 0-9 or symbols), then SPC, the other
  pages, DEL and DONE: DONE is one "prev" from the start. The cursor stays
  where it was after a character, for repeated and nearby letters.

The text is built in a fixed bytearray (never a str, never reallocated);
`wipe()` clears it and `value` is a copy for the caller to wipe. Only the
word being typed of a mnemonic ever becomes a str, to be drawn.
"""

import os

from .secrets import wipe

KINDS = ("words", "share", "word", "share_word", "pin", "text", "dice", "number")
WORD_COUNTS = (12, 15, 18, 21, 24)
SHARE_COUNTS = (20, 33)  # SLIP-0039 shares of 128 and 256 bits
PIN_MIN = 4
PIN_MAX = 12
TEXT_MAX = 100
DICE_MAX = 200
_CAPACITY = {"words": 24 * 9, "share": 33 * 9, "word": 9, "share_word": 9, "pin": PIN_MAX, "text": TEXT_MAX, "dice": DICE_MAX,
             "number": 2}

# Choices: a character is its byte value; the special ones are negative.
DEL = -1
DONE = -2
NEXT = -3
_PAGE = -10  # _PAGE - p switches to page p
SPACE = 32

_PAGES = (b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"0123456789",
          b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_PAGE_NAMES = ("abc", "ABC", "123", "#+=")
_PIN_WHEEL = list(b"0123456789") + [DEL, DONE]
_DICE_WHEEL = list(b"123456") + [DEL, DONE]
_NUMBER_WHEEL = list(b"0123456789") + [DEL, DONE]


def _random(n):
    return os.urandom(1)[0] % n


def label(choice):
    if choice == DEL:
        return "DEL"
    if choice == DONE:
        return "DONE"
    if choice == NEXT:
        return "NEXT"
    if choice <= _PAGE:
        return _PAGE_NAMES[_PAGE - choice]
    return "SPC" if choice == SPACE else chr(choice)


def _first(words, lo, hi, i, c):
    """The first index in [lo, hi) whose word's letter i is >= c; all the
    words there share their first i letters, so they are sorted by it (a
    word of only i letters comes first)."""
    while lo < hi:
        mid = (lo + hi) // 2
        w = words[mid]
        if (ord(w[i]) if len(w) > i else -1) < c:
            lo = mid + 1
        else:
            hi = mid
    return lo


class TextEntry:
    def __init__(self, kind, rand=None):
        if kind not in KINDS:
            raise ValueError("unknown kind of text")
        self.kind = kind
        self._rand = rand or _random
        self._buf = bytearray(_CAPACITY[kind])
        self._n = 0
        self.done = False
        self._note = None  # shown instead of the text until the next event
        self._pos = 0
        self._page = 0
        self._wordy = kind in ("words", "share", "word", "share_word")
        if self._wordy:
            if kind in ("share", "share_word"):
                from embit.wordlists.slip39 import SLIP39_WORDS as WORDLIST
            else:
                from embit.wordlists.bip39 import WORDLIST
            self._list = WORDLIST
            self._counts = {"words": WORD_COUNTS, "share": SHARE_COUNTS, "word": (1,), "share_word": (1,)}[kind]
            self._start = 0  # where the word being typed starts
            self._k = 0  # how many words come before it
        elif kind == "pin":
            self._pos = self._rand(10)
        self._wheel = self._make_wheel()

    # ---- what the board draws
    def lines(self):
        return [self._note or self._text_line(), self._wheel_line()]

    def choice(self):
        """The label of the choice under the cursor."""
        return label(self._wheel[self._pos])

    def _text_line(self):
        n = self._n
        if self._wordy:
            word = str(memoryview(self._buf)[self._start:n], "ascii")
            return "%d: %s_" % (self._k + 1, word)
        if self.kind == "dice":
            return "%d rolls_" % n
        if self.kind == "number":
            return str(memoryview(self._buf)[:n], "ascii") + "_"
        if n > 13:
            return "%d chars_" % n
        return "*" * n + ("_" if n < len(self._buf) else "")

    def _wheel_line(self):
        w = self._wheel
        cur = label(w[self._pos])
        if self.kind == "pin":
            return "<  %s  >" % cur  # never a digit beside the one chosen
        return "%s [%s] %s" % (label(w[self._pos - 1]), cur, label(w[(self._pos + 1) % len(w)]))

    # ---- the text
    @property
    def value(self):
        n = self._n
        if n and self._buf[n - 1] == SPACE and self._wordy:
            n -= 1  # NEXT then DONE
        return bytearray(memoryview(self._buf)[:n])

    def wipe(self):
        wipe(self._buf)
        self._n = 0

    def _put(self, c):
        self._buf[self._n] = c
        self._n += 1

    # ---- events
    def handle(self, event):
        """Act on one event; True once the officer has chosen DONE."""
        if self.done:
            return True
        self._note = None
        size = len(self._wheel)
        if event == "next":
            self._pos = (self._pos + 1) % size
        elif event == "prev":
            self._pos = (self._pos - 1) % size
        elif event == "select":
            self._take(self._wheel[self._pos])
        elif event == "delete":
            self._delete()
            self._rewheel(self._wheel[self._pos])
        return self.done

    def _take(self, c):
        was = c
        if c == DONE:
            self.done = self._can_finish()
            return
        if c == DEL:
            self._delete()
        elif c == NEXT:
            self._put(SPACE)
            self._k += 1
            self._start = self._n
        elif c <= _PAGE:
            self._page = _PAGE - c
            self._wheel = self._make_wheel()
            self._pos = 0
            return
        elif self._wordy:
            self._add_letter(c)
        elif self._n < len(self._buf):
            self._put(c)
            if self.kind == "pin":
                self._pos = self._rand(10)
                was = None
        self._rewheel(was)

    def _rewheel(self, was):
        """Rebuild the wheel; the cursor stays on `was` where the wheel has
        not changed (pin, text), else goes to the first choice."""
        if self._wordy:
            self._wheel = self._make_wheel()
            self._pos = 0
        elif was is not None and was in self._wheel:
            self._pos = self._wheel.index(was)

    def _can_finish(self):
        if self.kind == "pin" and self._n < PIN_MIN:
            self._note = "4-12 digits"
            return False
        if self._wordy and not self._checksum_ok():
            self._note = "Bad checksum"
            return False
        return True

    def _delete(self):
        if not self._n:
            return
        back_into_word = self._wordy and self._n == self._start
        self._drop()
        if back_into_word:  # the space: the previous word again, whole
            self._k -= 1
            s = self._n
            while s and self._buf[s - 1] != SPACE:
                s -= 1
            self._start = s
        elif self._wordy:
            # Back to where the officer last had a choice: letters that
            # were filled in go with the letter chosen before them.
            while self._n > self._start and not self._branches():
                self._drop()

    def _drop(self):
        self._n -= 1
        self._buf[self._n] = 0

    # ---- words
    def _range(self):
        """[lo, hi) of the words that begin with the word being typed."""
        words = self._list
        lo, hi = 0, len(words)
        for i in range(self._n - self._start):
            c = self._buf[self._start + i]
            lo = _first(words, lo, hi, i, c)
            hi = _first(words, lo, hi, i, c + 1)
        return lo, hi

    def _branches(self):
        """Whether the officer chooses what follows the word so far: it is
        empty, a whole word, or goes on in more than one way."""
        i = self._n - self._start
        if not i:
            return True
        lo, hi = self._range()
        first, last = self._list[lo], self._list[hi - 1]
        return len(first) == i or first[i] != last[i]

    def _add_letter(self, c):
        # Then the letters that every word left shares (all of the word,
        # once only one is left).
        self._put(c)
        while not self._branches():
            lo = self._range()[0]
            self._put(ord(self._list[lo][self._n - self._start]))

    def _make_wheel(self):
        if self.kind == "pin":
            return _PIN_WHEEL
        if self.kind == "dice":
            return _DICE_WHEEL
        if self.kind == "number":
            return _NUMBER_WHEEL
        if self.kind == "text":
            wheel = list(_PAGES[self._page])
            wheel.append(SPACE)
            for p in range(len(_PAGES)):
                if p != self._page:
                    wheel.append(_PAGE - p)
            wheel.append(DEL)
            wheel.append(DONE)
            return wheel
        words = self._list
        lo, hi = self._range()
        i = self._n - self._start
        whole = i > 0 and len(words[lo]) == i
        count = self._k + (1 if whole else 0)
        wheel = []
        if (whole or not i) and count in self._counts:
            wheel.append(DONE)
        if whole and count < self._counts[-1]:
            wheel.append(NEXT)
        if whole:
            lo += 1
        while lo < hi:  # each letter that continues some word, once
            c = ord(words[lo][i])
            wheel.append(c)
            lo = _first(words, lo, hi, i, c + 1)
        wheel.append(DEL)
        return wheel

    def _indices(self):
        """The word list indices of the words typed (a list the caller
        clears: small ints live in the list itself, never elsewhere)."""
        nwords = self._k + (1 if self._n > self._start else 0)
        out = []
        start = 0
        saved = self._start, self._n
        try:
            for _ in range(nwords):
                end = start
                while end < saved[1] and self._buf[end] != SPACE:
                    end += 1
                self._start, self._n = start, end
                out.append(self._range()[0])
                start = end + 1
        finally:
            self._start, self._n = saved
        return out

    def _checksum_ok(self):
        if self.kind in ("word", "share_word"):
            return True  # one word: the caller compares it
        if self.kind == "share":
            from .slip39 import share_checksum_ok

            idx = self._indices()
            try:
                return share_checksum_ok(idx)
            finally:
                for i in range(len(idx)):
                    idx[i] = 0
        return self._bip39_checksum_ok()

    def _bip39_checksum_ok(self):
        """The BIP39 checksum of the words typed, without making a str."""
        import hashlib

        idx = self._indices()
        nwords = len(idx)
        bits = bytearray((nwords * 11 + 7) // 8)
        pos = 0
        for k in range(nwords):
            for b in range(10, -1, -1):
                if (idx[k] >> b) & 1:
                    bits[pos >> 3] |= 0x80 >> (pos & 7)
                pos += 1
            idx[k] = 0
        size = nwords * 4 // 3  # entropy bytes
        cs = nwords // 3  # checksum bits
        digest = hashlib.sha256(memoryview(bits)[:size]).digest()
        ok = digest[0] >> (8 - cs) == bits[size] >> (8 - cs)
        wipe(bits)
        return ok

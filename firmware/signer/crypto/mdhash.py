"""Buffering and padding shared by the Merkle-Damgard hashes (SHA-512, RIPEMD-160).

A subclass sets `digest_size`, `block_size`, `name`, `_IV` (initial state
bytes), `_LEN_BYTES` and `_ORDER` (how the bit length is padded) and
implements `_block(state, data, off)` and `_output(state)`.
"""

from binascii import hexlify


class MDHash:
    def __init__(self, data=b""):
        self._h = bytearray(self._IV)
        self._buf = bytearray(self.block_size)
        self._n = 0  # bytes pending in _buf
        self._len = 0  # bytes hashed so far
        if data:
            self.update(data)

    def update(self, data):
        bs = self.block_size
        ln = len(data)
        self._len += ln
        i = 0
        n = self._n
        if n:
            i = min(bs - n, ln)
            self._buf[n : n + i] = data[0:i]
            n += i
            if n < bs:
                self._n = n
                return
            self._block(self._h, self._buf, 0)
        # Whole blocks straight from the caller's buffer, no copy.
        while ln - i >= bs:
            self._block(self._h, data, i)
            i += bs
        self._n = ln - i
        if i < ln:
            self._buf[0 : ln - i] = data[i:ln]

    def copy(self):
        c = type(self)()
        c._h[:] = self._h
        c._buf[:] = self._buf
        c._n = self._n
        c._len = self._len
        return c

    def digest(self):
        # Pad a copy, so that update() may continue afterwards (as in CPython).
        bs = self.block_size
        lb = self._LEN_BYTES
        h = bytearray(self._h)
        n = self._n
        buf = bytearray(bs)
        buf[0:n] = memoryview(self._buf)[0:n]
        buf[n] = 0x80
        if n >= bs - lb:
            self._block(h, buf, 0)
            buf = bytearray(bs)
        buf[bs - lb : bs] = (self._len * 8).to_bytes(lb, self._ORDER)
        self._block(h, buf, 0)
        return self._output(h)

    def hexdigest(self):
        return hexlify(self.digest()).decode()

"""A stand-in for the ESP32's `esp32` module (NVS only), for boards/esp32 under
the unix port: blobs kept in memory, per namespace, as NVS keeps them in its
own flash partition."""

_STORE = {}


class NVS:
    def __init__(self, namespace):
        self.ns = _STORE.setdefault(namespace, {})
        self.pending = {}

    def get_blob(self, key, buf):
        if key not in self.ns:
            raise OSError(-4354)  # ESP_ERR_NVS_NOT_FOUND
        value = self.ns[key]
        buf[: len(value)] = value
        return len(value)

    def set_blob(self, key, value):
        self.pending[key] = bytes(value)

    def commit(self):
        self.ns.update(self.pending)
        self.pending = {}

"""DebugLink: the emulator's test channel (press buttons, type text, read the
screen). It exists only in the emulator; the ESP32 build has no such line."""

import time

from .errors import TransportError
from .transport import Transport


class DebugLink:
    def __init__(self, port: str, timeout: float = 10.0):
        self.t = Transport(port, timeout)

    def close(self):
        self.t.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def state(self) -> dict:
        """{"screen": the screen shown now or None, "busy": ...}"""
        return self.t.call("debug_state")

    def screen(self) -> dict | None:
        return self.state()["screen"]

    def press(self, button: str) -> None:
        self.t.call("debug_press", {"button": button})

    def approve(self) -> None:
        self.press("approve")

    def reject(self) -> None:
        self.press("reject")

    def type_text(self, text: str) -> None:
        """Type a whole text into the current text prompt."""
        self.t.call("debug_input", {"text": text})

    def key(self, key: str) -> None:
        """One key of the board's two-button text entry: next, prev, select, delete."""
        self.t.call("debug_key", {"key": key})

    def wait_screen(self, names, timeout: float = 30.0) -> dict:
        """Wait until one of the screens `names` is shown; return it."""
        if isinstance(names, str):
            names = (names,)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if screen is not None and screen["screen"] in names:
                return screen
            if time.monotonic() > deadline:
                shown = screen["screen"] if screen else "nothing"
                raise TransportError(f"the device did not show {'/'.join(names)} (it shows {shown})")
            time.sleep(0.05)

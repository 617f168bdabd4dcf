"""Errors of the host tools. Every failure a user can meet is one of these,
so that the CLIs can print one line and exit with a meaningful code."""


class AmanatError(Exception):
    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class TransportError(AmanatError):
    """The port is missing, the line broke, or the device did not answer in time."""


class DeviceBusyError(TransportError):
    """Another program holds the device's port (an `amanat sign` waiting for the officer, say)."""


class ProtocolError(AmanatError):
    """The device answered something that is not the protocol."""


class DeviceError(AmanatError):
    """The device answered with a typed error (docs/protocol.md, "Error codes")."""

    NAMES = {1: "BAD_FRAME", 2: "BAD_REQUEST", 3: "UNKNOWN_METHOD", 4: "BAD_PARAMS", 5: "BUSY",
             6: "NOT_READY", 7: "REJECTED", 8: "BAD_PSBT", 9: "REFUSED", 10: "UPLOAD",
             11: "STORAGE", 12: "INTERNAL", 13: "TRAIL_FULL", 14: "CHECKPOINT_DUE"}

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.name = self.NAMES.get(code, f"ERROR_{code}")

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class SignatureError(AmanatError):
    """A signature returned by the device does not verify."""


class AntiExfilFailure(SignatureError):
    """A device's ECDSA signature whose nonce does not hold the host's
    anti-exfil entropy: the device may be compromised; nothing it signed is kept."""

    def __init__(self, message: str):
        self.reason = message
        super().__init__(f"ANTI-EXFIL CHECK FAILED, the device may be compromised: {message}; "
                         "nothing it signed was kept")


class PsbtError(AmanatError):
    """A PSBT that is malformed, or cannot be combined, finalized or extracted (the message says why)."""


class LimitError(PsbtError):
    """A PSBT beyond what the device takes (the limits its `info` publishes): refused before it is sent."""

"""Typed errors of the device, one per wire error code (docs/protocol.md).

Every refusal raises one of these with a message that names what is wrong
(which parameter, input, output); the request loop turns it into
{"error": {"code", "message"}} and the device carries on.
"""


class DeviceError(Exception):
    code = 12
    name = "INTERNAL"

    @property
    def message(self):
        return self.args[0] if self.args else self.name


class BadFrame(DeviceError):
    code = 1
    name = "BAD_FRAME"


class BadRequest(DeviceError):
    code = 2
    name = "BAD_REQUEST"


class UnknownMethod(DeviceError):
    code = 3
    name = "UNKNOWN_METHOD"


class BadParams(DeviceError):
    code = 4
    name = "BAD_PARAMS"


class Busy(DeviceError):
    code = 5
    name = "BUSY"


class NotReady(DeviceError):
    code = 6
    name = "NOT_READY"


class Rejected(DeviceError):
    code = 7
    name = "REJECTED"


class BadPsbt(DeviceError):
    code = 8
    name = "BAD_PSBT"


class Refused(DeviceError):
    code = 9
    name = "REFUSED"


class UploadError(DeviceError):
    code = 10
    name = "UPLOAD"


class StorageError(DeviceError):
    code = 11
    name = "STORAGE"


class InternalError(DeviceError):
    code = 12
    name = "INTERNAL"


class TrailFull(DeviceError):
    code = 13
    name = "TRAIL_FULL"


class CheckpointDue(DeviceError):
    code = 14
    name = "CHECKPOINT_DUE"


BY_CODE = {
    c.code: c
    for c in (BadFrame, BadRequest, UnknownMethod, BadParams, Busy, NotReady, Rejected,
              BadPsbt, Refused, UploadError, StorageError, InternalError, TrailFull, CheckpointDue)
}

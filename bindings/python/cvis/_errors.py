"""Python exceptions for libcvis status codes: one class per status."""


class Error(Exception):
    """Any failure reported by libcvis.  .status is the C status code."""
    status = -1

    def __init__(self, message, function=None):
        super().__init__(message)
        self.message = message
        self.function = function


class InvalidArgumentError(Error, ValueError):
    status = 1


class OutOfMemoryError(Error, MemoryError):
    status = 2


class IOError_(Error, OSError):
    status = 3


class FormatError(Error, ValueError):
    status = 4


class UnsupportedError(Error, NotImplementedError):
    status = 5


class ShapeError(Error, ValueError):
    status = 6


class NotFoundError(Error, KeyError):
    status = 7

    def __str__(self):  # KeyError would quote the message
        return self.message


class RangeError(Error, IndexError):
    status = 8


class NonFiniteError(Error, ValueError):
    status = 9


class CancelledError(Error):
    status = 10


class LimitError(Error, MemoryError):
    status = 11


class LayerKindError(Error, ValueError):
    status = 12


class StateError(Error, RuntimeError):
    status = 13


class CallbackError(Error, RuntimeError):
    status = 14


class InternalError(Error, RuntimeError):
    status = 15


IOError_.__name__ = "IOError"
IOError_.__qualname__ = "IOError"

BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, OutOfMemoryError, IOError_, FormatError, UnsupportedError, ShapeError,
    NotFoundError, RangeError, NonFiniteError, CancelledError, LimitError, LayerKindError,
    StateError, CallbackError, InternalError)}


def from_status(status, message, function=None):
    cls = BY_STATUS.get(status, Error)
    err = cls(message or "libcvis status %d" % status, function)
    if cls is Error:
        err.status = status
    return err

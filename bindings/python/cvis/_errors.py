"""Python exceptions for libcvis status codes: one class per status."""


class Error(Exception):
    """Any failure reported by libcvis.

    .status         the C status code (cvis_status)
    .message        the library's message (cvis_last_error), also str(error)
    .function       the C function that failed ("cvis_model_predict")
    .status_string  the status's fixed name (cvis_status_string)
    """
    status = -1

    def __init__(self, message, function=None, status_string=None):
        super().__init__(message)
        self.message = message
        self.function = function
        self.status_string = status_string


class InvalidArgumentError(Error, ValueError):
    """CVIS_E_INVALID_ARG: a NULL pointer, a negative size, an unknown key, a name
    already taken."""
    status = 1


class OutOfMemoryError(Error, MemoryError):
    """CVIS_E_NOMEM: an allocation within the limit failed."""
    status = 2


class IOError_(Error, OSError):
    """CVIS_E_IO: a file could not be opened, read or written."""
    status = 3


class FormatError(Error, ValueError):
    """CVIS_E_FORMAT: a file is corrupt, truncated or not what it claims."""
    status = 4


class UnsupportedError(Error, NotImplementedError):
    """CVIS_E_UNSUPPORTED: valid, but a feature libcvis does not implement."""
    status = 5


class ShapeError(Error, ValueError):
    """CVIS_E_SHAPE: tensor shapes do not fit together."""
    status = 6


class NotFoundError(Error, KeyError):
    """CVIS_E_NOT_FOUND: no layer, weight, method or entry of that name."""
    status = 7

    def __str__(self):  # KeyError would quote the message
        return self.message


class RangeError(Error, IndexError):
    """CVIS_E_RANGE: an index outside its valid range."""
    status = 8


class NonFiniteError(Error, ValueError):
    """CVIS_E_NONFINITE: NaN or infinity where finite values are needed."""
    status = 9


class CancelledError(Error):
    """CVIS_E_CANCELLED: a progress callback asked to stop."""
    status = 10


class LimitError(Error, MemoryError):
    """CVIS_E_LIMIT: the request exceeds the allocation limit (cvis.set_alloc_limit)."""
    status = 11


class LayerKindError(Error, ValueError):
    """CVIS_E_LAYER_KIND: the layer is not of the kind required."""
    status = 12


class StateError(Error, RuntimeError):
    """CVIS_E_STATE: the object is not in a state that allows the call."""
    status = 13


class CallbackError(Error, RuntimeError):
    """CVIS_E_CALLBACK: a C callback reported an error."""
    status = 14


class InternalError(Error, RuntimeError):
    """CVIS_E_INTERNAL: a bug in libcvis; please report it."""
    status = 15


IOError_.__name__ = "IOError"
IOError_.__qualname__ = "IOError"

BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, OutOfMemoryError, IOError_, FormatError, UnsupportedError, ShapeError,
    NotFoundError, RangeError, NonFiniteError, CancelledError, LimitError, LayerKindError,
    StateError, CallbackError, InternalError)}


def from_status(status, message, function=None, status_string=None):
    """The exception for a failed C call: the class of its status (cvis.Error
    itself for a status this package does not know)."""
    cls = BY_STATUS.get(status, Error)
    err = cls(message or status_string or "libcvis status %d" % status, function, status_string)
    if cls is Error:
        err.status = status
    return err

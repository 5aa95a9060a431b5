"""The one error hierarchy of supernas; the service maps each class to an HTTP status."""

from __future__ import annotations


class SupernasError(Exception):
    """Base of every error raised on purpose by supernas."""

    status_code = 500
    title = "Internal error"


class InvalidInputError(SupernasError):
    """User input is well-formed but not acceptable; ``loc`` names the offending field."""

    status_code = 422
    title = "Invalid input"

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


class NotFoundError(SupernasError):
    status_code = 404
    title = "Not found"


class ConflictError(SupernasError):
    """The request is valid but the resource's current state does not allow it."""

    status_code = 409
    title = "Conflict"


class SchemaMismatchError(SupernasError):
    """The database carries a schema revision this version of supernas does not know."""

    title = "Unknown database schema"


class PayloadTooLargeError(SupernasError):
    """A request body (an upload) is larger than the service accepts."""

    status_code = 413
    title = "Payload too large"


class MalformedInputError(SupernasError):
    """The request body cannot be parsed at all (bad JSON or YAML)."""

    status_code = 400
    title = "Malformed request body"

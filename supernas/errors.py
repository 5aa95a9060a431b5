"""The one error hierarchy of supernas; the service maps each class to an HTTP status and a stable
machine-readable ``code`` (sent in every problem+json body)."""

from __future__ import annotations


class SupernasError(Exception):
    """Base of every error raised on purpose by supernas."""

    status_code = 500
    title = "Internal error"
    code = "internal_error"
    headers: dict[str, str] | None = None


class InvalidInputError(SupernasError):
    """User input is well-formed but not acceptable; ``loc`` names the offending field."""

    status_code = 422
    title = "Invalid input"
    code = "invalid_input"

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


class NotFoundError(SupernasError):
    status_code = 404
    title = "Not found"
    code = "not_found"


class ConflictError(SupernasError):
    """The request is valid but the resource's current state does not allow it."""

    status_code = 409
    title = "Conflict"
    code = "conflict"


class SchemaMismatchError(SupernasError):
    """The database carries a schema revision this version of supernas does not know."""

    title = "Unknown database schema"
    code = "schema_mismatch"


class PayloadTooLargeError(SupernasError):
    """A request body (an upload) is larger than the service accepts."""

    status_code = 413
    title = "Payload too large"
    code = "payload_too_large"


class MalformedInputError(SupernasError):
    """The request body cannot be parsed at all (bad JSON or YAML)."""

    status_code = 400
    title = "Malformed request body"
    code = "malformed_body"


class IdempotencyKeyReusedError(ConflictError):
    """An ``Idempotency-Key`` already used for a request with another body."""

    title = "Idempotency key reused"
    code = "idempotency_key_reused"


class UnauthorizedError(SupernasError):
    """No valid bearer token: missing, malformed, unknown, expired or revoked."""

    status_code = 401
    title = "Unauthorized"
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="supernas"'}


class ForbiddenError(SupernasError):
    """A valid token that may not do this (an admin-only action)."""

    status_code = 403
    title = "Forbidden"
    code = "forbidden"

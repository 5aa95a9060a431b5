"""Bearer-token authentication: token format, hashing, the request's principal, and the admin token
created on first start.

A token reads ``snas_<id>_<secret>``; only the SHA-256 of the secret is stored (secrets are 256
random bits, so a slow hash adds nothing). With auth disabled every request acts as the admin of
the single owner ``local``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.storage import Storage
from service.storage.models import LOCAL_OWNER
from supernas.errors import InvalidInputError, MalformedInputError, UnauthorizedError
from supernas.records import TokenRecord

TOKEN_PREFIX = "snas_"
_TOKEN = re.compile(r"^snas_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
OWNER_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
ADMIN_OWNER = "admin"


@dataclass(frozen=True)
class Principal:
    """Who a request acts for; admins see and manage every owner's resources."""

    owner: str
    is_admin: bool
    token_id: str | None = None

    def sees(self, owner: str) -> bool:
        return self.is_admin or owner == self.owner

    @property
    def owner_filter(self) -> str | None:
        """The owner to restrict listings to; None (everything) for admins."""
        return None if self.is_admin else self.owner


LOCAL_PRINCIPAL = Principal(owner=LOCAL_OWNER, is_admin=True)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    storage: Storage, owner: str, description: str, is_admin: bool = False, expires_at: datetime | None = None
) -> tuple[TokenRecord, str]:
    """Create a token; returns its record and the token string, which is never stored."""
    if not re.match(OWNER_PATTERN, owner):
        raise InvalidInputError(
            "owner must be 1-64 lowercase letters, digits, '.', '_' or '-'", ("body", "owner")
        )
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = storage.create_token(token_id, hash_secret(secret), owner, description, is_admin, expires_at)
    return record, f"{TOKEN_PREFIX}{token_id}_{secret}"


def verify_token(storage: Storage, token: str) -> Principal:
    """The principal of a usable token, or ``UnauthorizedError`` saying why not."""
    match = _TOKEN.match(token)
    found = storage.token_secret_hash(match.group(1)) if match else None
    if match is None or found is None or not hmac.compare_digest(found[1], hash_secret(match.group(2))):
        raise UnauthorizedError("invalid bearer token")
    record = found[0]
    if record.revoked_at is not None:
        raise UnauthorizedError(f"token {record.id} was revoked")
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        raise UnauthorizedError(f"token {record.id} expired at {record.expires_at.isoformat()}")
    return Principal(owner=record.owner, is_admin=record.is_admin, token_id=record.id)


_BEARER = HTTPBearer(auto_error=False, description="A token from 'supernas token create'")


def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
) -> Principal:
    """FastAPI dependency of every API route: the request's principal, also kept on ``request.state``.
    A query string with a nameless parameter (``?=x``) is refused as malformed first."""
    if any(name == "" for name, _ in request.query_params.multi_items()):
        raise MalformedInputError("the query string has a parameter without a name")
    if not request.app.state.settings.auth:
        principal = LOCAL_PRINCIPAL
    elif credentials is None:
        raise UnauthorizedError("this API needs 'Authorization: Bearer <token>' (see 'supernas token')")
    else:
        principal = verify_token(request.app.state.storage, credentials.credentials.strip())
    request.state.principal = principal
    return principal


def principal_of(request: Request) -> Principal:
    return request.state.principal


FIRST_TOKEN_NOTICE = "supernas: first start: admin token (shown once, keep it safe):"


def printed_admin_token(output: str) -> str | None:
    """The admin token a first start printed (see ``FIRST_TOKEN_NOTICE``) in a service's output."""
    for line in output.splitlines():
        if line.startswith(FIRST_TOKEN_NOTICE):
            return line.removeprefix(FIRST_TOKEN_NOTICE).strip()
    return None


def bootstrap_admin_token(storage: Storage) -> str | None:
    """On a first start with auth on (no usable admin token yet), create one and return it."""
    if storage.count_usable_admin_tokens() > 0:
        return None
    _, token = issue_token(storage, ADMIN_OWNER, "created on first start", is_admin=True)
    return token

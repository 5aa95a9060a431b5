"""Routes of API tokens: create (the secret is shown once), list and revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from service.api.access import storage_of
from service.auth import OWNER_PATTERN, issue_token, principal_of
from supernas.errors import ForbiddenError
from supernas.records import TokenRecord

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenRequest(BaseModel):
    model_config = {"extra": "forbid"}

    owner: str | None = Field(default=None, pattern=OWNER_PATTERN, description="Default: your own")
    description: str = Field(default="", max_length=255)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650, description="Default: never")
    is_admin: bool = False


class TokenOut(BaseModel):
    id: str
    owner: str
    description: str
    is_admin: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def build(cls, record: TokenRecord) -> TokenOut:
        return cls(**{name: getattr(record, name) for name in cls.model_fields})


class NewTokenOut(TokenOut):
    token: str  # shown only in this response; stored only as a hash


class TokenList(BaseModel):
    items: list[TokenOut]


@router.post("", status_code=201, response_model=NewTokenOut)
def create_token(body: TokenRequest, request: Request) -> NewTokenOut:
    """A new token for yourself; admins may create tokens for any owner, and admin tokens."""
    principal = principal_of(request)
    owner = body.owner or principal.owner
    if not principal.is_admin and (owner != principal.owner or body.is_admin):
        raise ForbiddenError("only an admin token can create tokens for another owner or admin tokens")
    expires = None
    if body.expires_in_days is not None:
        expires = datetime.now(UTC) + timedelta(days=body.expires_in_days)
    record, token = issue_token(storage_of(request), owner, body.description, body.is_admin, expires)
    return NewTokenOut(**TokenOut.build(record).model_dump(), token=token)


@router.get("", response_model=TokenList)
def list_tokens(request: Request) -> TokenList:
    """Your tokens (an admin sees every token); never their secrets."""
    records = storage_of(request).list_tokens(principal_of(request).owner_filter)
    return TokenList(items=[TokenOut.build(r) for r in records])


@router.post("/{token_id}/revoke", response_model=TokenOut)
def revoke_token(token_id: Annotated[str, Path(pattern="^[0-9a-f]{12}$")], request: Request) -> TokenOut:
    """Revoke one of your tokens (an admin: any token); requests with it get 401 from now on."""
    record = storage_of(request).revoke_token(token_id, principal_of(request).owner_filter)
    return TokenOut.build(record)

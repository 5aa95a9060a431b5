"""API tokens in storage: created with a hash of their secret, listed, revoked, and looked up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from service.storage.models import TokenRow, utcnow
from service.storage.queries import NO_SYNC
from supernas.errors import NotFoundError
from supernas.records import TokenRecord


class TokenStore:
    """Token methods of :class:`service.storage.Storage`."""

    engine: Engine

    def create_token(
        self,
        token_id: str,
        secret_sha256: str,
        owner: str,
        description: str,
        is_admin: bool = False,
        expires_at: datetime | None = None,
    ) -> TokenRecord:
        with Session(self.engine) as s, s.begin():
            row = TokenRow(
                id=token_id,
                secret_sha256=secret_sha256,
                owner=owner,
                description=description,
                is_admin=is_admin,
                expires_at=expires_at,
            )
            s.add(row)
            s.flush()
            return row.to_record()

    def token_secret_hash(self, token_id: str) -> tuple[TokenRecord, str] | None:
        """The token and the hash of its secret, or None for an unknown id."""
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(TokenRow).where(TokenRow.id == token_id))
            return None if row is None else (row.to_record(), row.secret_sha256)

    def list_tokens(self, owner: str | None = None) -> list[TokenRecord]:
        """Every token (of ``owner`` if given), oldest first."""
        stmt = select(TokenRow).order_by(TokenRow.pk)
        if owner is not None:
            stmt = stmt.where(TokenRow.owner == owner)
        with Session(self.engine) as s, s.begin():
            return [row.to_record() for row in s.scalars(stmt)]

    def revoke_token(self, token_id: str, owner: str | None = None) -> TokenRecord:
        """Revoke a token (of ``owner`` if given; another owner's token is not found). Idempotent."""
        matching = [TokenRow.id == token_id] + ([TokenRow.owner == owner] if owner is not None else [])
        with Session(self.engine) as s, s.begin():
            s.execute(
                update(TokenRow).where(*matching, TokenRow.revoked_at.is_(None)).values(revoked_at=utcnow()),
                execution_options=NO_SYNC,
            )
            row = s.scalar(select(TokenRow).where(*matching))
            if row is None:
                raise NotFoundError(f"no token with id {token_id!r}")
            s.refresh(row)
            return row.to_record()

    def count_usable_admin_tokens(self) -> int:
        now = utcnow()
        with Session(self.engine) as s, s.begin():
            return (
                s.scalar(
                    select(func.count())
                    .select_from(TokenRow)
                    .where(
                        TokenRow.is_admin.is_(True),
                        TokenRow.revoked_at.is_(None),
                        (TokenRow.expires_at.is_(None)) | (TokenRow.expires_at > now),
                    )
                )
                or 0
            )

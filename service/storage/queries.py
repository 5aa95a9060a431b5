"""Helpers shared by the Storage methods: row lookups, page tokens, retry of idempotent creates."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from service.storage.models import SearchRow, TrialRow
from supernas.errors import InvalidInputError, NotFoundError
from supernas.records import Page
from supernas.states import TrialState

T = TypeVar("T")
# pending, running, or paused (by the scheduler, or set aside while the search is not running)
UNFINISHED_TRIALS = (TrialState.PENDING.value, TrialState.RUNNING.value, TrialState.PAUSED.value)
NO_SYNC: dict[str, Any] = {"synchronize_session": False}


def encode_token(payload: dict[str, int]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, key: str) -> int | None:
    """The cursor stored under ``key`` in an opaque page token, or None for the first page."""
    if token is None:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:  # bad base64, bad UTF-8 and bad JSON are all ValueErrors
        payload = None
    value = payload.get(key) if isinstance(payload, dict) else None
    if type(value) is not int or value < 0:
        raise InvalidInputError("invalid page_token", ("query", "page_token"))
    return value


def check_page_size(page_size: int) -> None:
    if page_size < 1:
        raise InvalidInputError("page_size must be at least 1", ("query", "page_size"))


def newest_first_page(
    engine: Engine, row_type: Any, filters: list[Any], page_size: int, page_token: str | None
) -> Page[Any]:
    """One page of ``row_type`` rows matching ``filters``, newest first, as records. The token is a
    keyset cursor on ``pk``, so concurrent inserts never shift pages."""
    check_page_size(page_size)
    before = decode_token(page_token, "before")
    stmt = select(row_type).where(*filters).order_by(row_type.pk.desc()).limit(page_size + 1)
    if before is not None:
        stmt = stmt.where(row_type.pk < before)
    with Session(engine) as s, s.begin():
        rows = list(s.scalars(stmt))
        total = s.scalar(select(func.count()).select_from(row_type).where(*filters)) or 0
        token = encode_token({"before": rows[page_size - 1].pk}) if len(rows) > page_size else None
        return Page([row.to_record() for row in rows[:page_size]], token, total)


def claim_oldest(
    engine: Engine, row_type: Any, queued: tuple[Any, ...], values: dict[str, Any]
) -> Any | None:
    """Set ``values`` on the oldest row matching ``queued`` and return it as a record (None if none).

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the oldest matching row no other
    transaction holds and locks it until this transaction's UPDATE commits, so concurrent claimers take
    different rows without waiting on one another. SQLite ignores FOR UPDATE (its writes are serialized
    by the database lock); there the UPDATE repeats the ``queued`` condition, and a lost race (rowcount
    0) moves on to the next row.
    """
    pick = select(row_type.id).where(*queued).order_by(row_type.pk).limit(1).with_for_update(skip_locked=True)
    while True:
        with Session(engine) as s, s.begin():
            found = s.scalar(pick)
            if found is None:
                return None
            claimed = s.execute(
                update(row_type).where(row_type.id == found, *queued).values(**values),
                execution_options=NO_SYNC,
            )
            if claimed.rowcount == 1:
                return s.scalar(select(row_type).where(row_type.id == found)).to_record()


def once_more_on_integrity_error(operation: Callable[[], T]) -> T:
    """Run an idempotent create; if a concurrent writer won a unique constraint, rerun it to find that row."""
    try:
        return operation()
    except IntegrityError:
        return operation()


def search_row(s: Session, search_id: str) -> SearchRow:
    row = s.scalar(select(SearchRow).where(SearchRow.id == search_id))
    if row is None:
        raise NotFoundError(f"no search with id {search_id!r}")
    return row


def trial_row(s: Session, search_id: str, number: int, with_reports: bool = False) -> TrialRow:
    stmt = select(TrialRow).where(TrialRow.search_id == search_id, TrialRow.number == number)
    if with_reports:
        stmt = stmt.options(selectinload(TrialRow.reports))
    row = s.scalar(stmt)
    if row is None:
        search_row(s, search_id)
        raise NotFoundError(f"no trial {number} in search {search_id!r}")
    return row

"""Storage of trained supernets: create, list, claim for training, record progress and the result.

A supernet either belongs to the search that trained it implicitly (``search_id`` set; that search's
driver trains it) or was requested on its own (``POST /api/v1/supernets``; the dispatcher claims it).
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.storage.models import LOCAL_OWNER, SearchRow, SupernetRow, utcnow
from service.storage.queries import claim_oldest, newest_first_page
from supernas.errors import ConflictError, NotFoundError
from supernas.records import Page, SupernetRecord
from supernas.states import SearchState, SupernetState

SUPERNET_PREFIX = "sn_"


def new_supernet_id() -> str:
    return SUPERNET_PREFIX + uuid4().hex


def new_supernet_row(
    spec: dict[str, Any],
    search_id: str | None = None,
    idempotency_key: str | None = None,
    owner: str = LOCAL_OWNER,
) -> SupernetRow:
    return SupernetRow(
        id=new_supernet_id(),
        name=spec.get("name", "supernet"),
        spec=spec,
        state=SupernetState.QUEUED.value,
        state_reason="waiting for training",
        family=spec["space"]["family"],
        task=spec["task"],
        search_id=search_id,
        idempotency_key=idempotency_key,
        owner=owner,
    )


def supernet_row(s: Session, supernet_id: str) -> SupernetRow:
    row = s.scalar(select(SupernetRow).where(SupernetRow.id == supernet_id))
    if row is None:
        raise NotFoundError(f"no supernet with id {supernet_id!r}")
    return row


class SupernetStore:
    engine: Engine

    def create_supernet(
        self, spec: dict[str, Any], idempotency_key: str | None = None, owner: str = LOCAL_OWNER
    ) -> tuple[SupernetRecord, bool]:
        """Queue a supernet for training; an already used ``idempotency_key`` returns that one and False."""
        if idempotency_key is not None and (found := self._supernet_by_key(idempotency_key)) is not None:
            return found, False
        try:
            with Session(self.engine) as s, s.begin():
                row = new_supernet_row(spec, idempotency_key=idempotency_key, owner=owner)
                s.add(row)
                s.flush()
                return row.to_record(), True
        except IntegrityError:
            found = self._supernet_by_key(idempotency_key) if idempotency_key is not None else None
            if found is None:
                raise
            return found, False

    def _supernet_by_key(self, idempotency_key: str) -> SupernetRecord | None:
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(SupernetRow).where(SupernetRow.idempotency_key == idempotency_key))
            return None if row is None else row.to_record()

    def get_supernet(self, supernet_id: str) -> SupernetRecord:
        with Session(self.engine) as s, s.begin():
            return supernet_row(s, supernet_id).to_record()

    def list_supernets(
        self, page_size: int, page_token: str | None = None, task: str | None = None, owner: str | None = None
    ) -> Page[SupernetRecord]:
        """Newest first, keyset-paged; optionally only those trained on ``task`` or of ``owner``."""
        filters = [] if task is None else [SupernetRow.task == task]
        if owner is not None:
            filters.append(SupernetRow.owner == owner)
        return newest_first_page(self.engine, SupernetRow, filters, page_size, page_token)

    def delete_supernet(self, supernet_id: str) -> None:
        """Delete a supernet that is no longer training (``ConflictError`` while it is queued or
        training, or while a search that has not ended names it)."""
        with Session(self.engine) as s, s.begin():
            row = supernet_row(s, supernet_id)
            if not SupernetState(row.state).is_terminal:
                raise ConflictError(f"supernet {supernet_id} is {row.state}; delete it once it has ended")
            ended = [state.value for state in SearchState if state.is_terminal]
            users = s.scalars(
                select(SearchRow.id)
                .where(SearchRow.supernet_id == supernet_id, SearchRow.state.not_in(ended))
                .order_by(SearchRow.pk)
            ).all()
            if users:
                raise ConflictError(
                    f"supernet {supernet_id} is used by searches that have not ended: {', '.join(users)}"
                )
            s.delete(row)

    def claim_next_queued_supernet(self) -> SupernetRecord | None:
        """Move the oldest queued stand-alone supernet to training (a search trains its own); like
        ``Storage.claim_next_queued_search`` (``claim_oldest``)."""
        return claim_oldest(
            self.engine,
            SupernetRow,
            (SupernetRow.state == SupernetState.QUEUED.value, SupernetRow.search_id.is_(None)),
            {
                "state": SupernetState.TRAINING.value,
                "state_reason": "claimed by dispatcher",
                "attempt": SupernetRow.attempt + 1,
                "updated_at": utcnow(),
            },
        )

    def set_supernet_state(
        self,
        supernet_id: str,
        state: SupernetState,
        reason: str | None,
        summary: dict[str, Any] | None = None,
    ) -> SupernetRecord:
        with Session(self.engine) as s, s.begin():
            row = supernet_row(s, supernet_id)
            row.state, row.state_reason = state.value, reason
            row.finished_at = utcnow() if state.is_terminal else None
            if summary is not None:
                row.summary = summary
                row.data_fingerprint = summary.get("data_fingerprint")
            return row.to_record()

    def recover_interrupted_supernets(self) -> list[str]:
        """After a restart: stand-alone supernets that were training are queued again (they resume)."""
        with Session(self.engine) as s, s.begin():
            rows = s.scalars(
                select(SupernetRow).where(
                    SupernetRow.state == SupernetState.TRAINING.value, SupernetRow.search_id.is_(None)
                )
            ).all()
            for row in rows:
                row.state, row.state_reason = SupernetState.QUEUED.value, "requeued after service restart"
            return [row.id for row in rows]

"""The Storage repository: every read and write of searches and trials, each in its own short transaction.

Only frozen records leave it. Transitions that can race (claiming a search, canceling it, starting or
finishing a trial) are conditional UPDATEs checked by rowcount, so they stay correct when several
threads or processes share one SQLite file or PostgreSQL database. The trial methods live in
:mod:`service.storage.trials`.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from service.storage.datasets import DatasetStore
from service.storage.engine import make_engine
from service.storage.migrate import upgrade_schema
from service.storage.models import LOCAL_OWNER, SearchRow, SupernetRow, utcnow
from service.storage.queries import (
    NO_SYNC,
    claim_oldest,
    newest_first_page,
    search_row,
)
from service.storage.supernets import SupernetStore, new_supernet_row
from service.storage.tokens import TokenStore
from service.storage.trial_views import TrialViewStore
from service.storage.trials import TrialStore
from service.storage.unfinished import end_unfinished_trials, set_aside_unfinished_trials
from supernas.errors import ConflictError
from supernas.records import Page, SearchRecord
from supernas.states import SearchState, SupernetState, TrialState

_ACTIVE_SEARCHES = (SearchState.RUNNING.value, SearchState.STOPPING.value)
_CANCELABLE_AT_ONCE = (SearchState.QUEUED.value, SearchState.PAUSED.value)
_LOST_IN_RESTART = "worker lost: service restarted"
_UNTRAINED = (SupernetState.QUEUED.value, SupernetState.TRAINING.value)  # a named supernet to wait for
_UNENDED = tuple(s.value for s in SearchState if not s.is_terminal)  # may still train its supernet


class Storage(TrialStore, TrialViewStore, SupernetStore, DatasetStore, TokenStore):
    """Searches, trials, supernets and data sets in a SQLAlchemy database (SQLite file or PostgreSQL)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.engine = make_engine(database_url)

    def upgrade(self) -> None:
        upgrade_schema(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database cannot be reached (for the readiness check)."""
        with self.engine.connect() as connection:
            connection.execute(select(1))

    # searches

    def create_search(
        self,
        spec: dict[str, Any],
        name: str,
        idempotency_key: str | None = None,
        supernet_spec: dict[str, Any] | None = None,
        owner: str = LOCAL_OWNER,
    ) -> tuple[SearchRecord, bool]:
        """Queue a new search; with an already used ``idempotency_key``, return that search and False.

        The search uses the trained supernet named in ``spec["supernet_id"]``, or else (given
        ``supernet_spec``) a new supernet record is created with it, which the search trains.
        """
        if idempotency_key is not None and (found := self._search_by_key(idempotency_key)) is not None:
            return found, False
        try:
            with Session(self.engine) as s, s.begin():
                search_id = uuid4().hex
                supernet_id = spec.get("supernet_id")
                early_epochs = (spec.get("fidelity") or {}).get("supernet_epochs")
                reason = "waiting for a dispatcher"
                if supernet_id is None and supernet_spec is not None:
                    supernet = new_supernet_row(supernet_spec, search_id=search_id, owner=owner)
                    s.add(supernet)
                    supernet_id = supernet.id
                elif supernet_id is not None:
                    named = s.scalar(select(SupernetRow.state).where(SupernetRow.id == supernet_id))
                    if early_epochs and named == SupernetState.QUEUED.value:  # trials start as it trains
                        reason = f"waiting for supernet {supernet_id} to start training"
                    elif not early_epochs and named in _UNTRAINED:  # later state changes: not shown
                        reason = f"waiting for supernet {supernet_id} to be trained"
                row = SearchRow(
                    id=search_id,
                    name=name,
                    spec=spec,
                    state=SearchState.QUEUED.value,
                    state_reason=reason,
                    idempotency_key=idempotency_key,
                    supernet_id=supernet_id,
                    owner=owner,
                    starts_on_training_supernet=bool(early_epochs and spec.get("supernet_id")),
                )
                s.add(row)
                s.flush()
                return row.to_record(), True
        except IntegrityError:
            found = self._search_by_key(idempotency_key) if idempotency_key is not None else None
            if found is None:
                raise
            return found, False

    def _search_by_key(self, idempotency_key: str) -> SearchRecord | None:
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(SearchRow).where(SearchRow.idempotency_key == idempotency_key))
            return None if row is None else row.to_record()

    def get_search(self, search_id: str) -> SearchRecord:
        with Session(self.engine) as s, s.begin():
            return search_row(s, search_id).to_record()

    def list_searches(
        self,
        page_size: int,
        page_token: str | None = None,
        name_contains: str | None = None,
        owner: str | None = None,
    ) -> Page[SearchRecord]:
        """Newest first, keyset-paged on ``pk``; ``name_contains`` filters by name, ignoring case;
        ``owner`` (if given) keeps only that owner's searches."""
        filters = [] if owner is None else [SearchRow.owner == owner]
        if name_contains:
            pattern = name_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            filters.append(func.lower(SearchRow.name).like(f"%{pattern}%", escape="\\"))
        return newest_first_page(self.engine, SearchRow, filters, page_size, page_token)

    def claim_next_queued_search(self) -> SearchRecord | None:
        """Move the oldest queued search to running; two dispatchers never claim the same one
        (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, see ``claim_oldest``). A search that names a
        supernet still queued or training elsewhere (stand-alone, or another search's that has not
        ended: a paused one resumes the training when it resumes) waits, and younger searches go first.
        One with ``fidelity.supernet_epochs`` waits only while that supernet is queued: its trials start
        on the early epochs while the supernet trains."""
        now = utcnow()
        owner = aliased(SearchRow)
        owner_may_train = exists().where(owner.id == SupernetRow.search_id, owner.state.in_(_UNENDED))
        starts_on_it = and_(
            SearchRow.starts_on_training_supernet.is_(True),
            SupernetRow.state == SupernetState.TRAINING.value,
        )
        waits_for_supernet = exists().where(
            SupernetRow.id == SearchRow.supernet_id,
            SupernetRow.state.in_(_UNTRAINED),
            or_(
                SupernetRow.search_id.is_(None),
                and_(SupernetRow.search_id != SearchRow.id, owner_may_train),
            ),
            ~starts_on_it,
        )
        return claim_oldest(
            self.engine,
            SearchRow,
            (
                SearchRow.state == SearchState.QUEUED.value,
                SearchRow.cancel_requested.is_(False),
                ~waits_for_supernet,
            ),
            {
                "state": SearchState.RUNNING.value,
                "state_reason": "claimed by dispatcher",
                "started_at": func.coalesce(SearchRow.started_at, now),
                "attempt": SearchRow.attempt + 1,
                "requested_action": None,
                "updated_at": now,
            },
        )

    def set_search_state(self, search_id: str, state: SearchState, reason: str | None = None) -> SearchRecord:
        with Session(self.engine) as s, s.begin():
            row = search_row(s, search_id)
            now = utcnow()
            row.state = state.value
            row.state_reason = reason
            row.finished_at = now if state.is_terminal else None
            if state is SearchState.RUNNING and row.started_at is None:
                row.started_at = now
            if state.is_terminal or state in (SearchState.PAUSED, SearchState.QUEUED):
                row.requested_action = None
            return row.to_record()

    def set_search_progress(self, search_id: str, message: str) -> None:
        """Show ``message`` as the reason of a running search (a requested pause or stop keeps its own)."""
        with Session(self.engine) as s, s.begin():
            s.execute(
                update(SearchRow)
                .where(
                    SearchRow.id == search_id,
                    SearchRow.state == SearchState.RUNNING.value,
                    SearchRow.requested_action.is_(None),
                )
                .values(state_reason=message, updated_at=utcnow()),
                execution_options=NO_SYNC,
            )

    def request_cancel(self, search_id: str) -> SearchRecord:
        """Queued/paused: canceled now; running/stopping: flag for the dispatcher; canceled: unchanged."""
        for _ in range(3):  # the state may change between our statements; each pass re-checks
            with Session(self.engine) as s, s.begin():
                if self._update_search(
                    s,
                    search_id,
                    _CANCELABLE_AT_ONCE,
                    reason="canceled by user",
                    state=SearchState.CANCELED.value,
                    finished_at=utcnow(),
                ):  # a paused search's set-aside trials will not resume
                    end_unfinished_trials(s, search_id, TrialState.CANCELED, "canceled by user")
                    _cancel_own_untrained_supernet(s, search_id, "canceled by user")
                    return search_row(s, search_id).to_record()
                if self._update_search(
                    s, search_id, _ACTIVE_SEARCHES, reason="cancel requested", cancel_requested=True
                ):
                    return search_row(s, search_id).to_record()
                row = search_row(s, search_id)
                if row.state == SearchState.CANCELED.value:
                    return row.to_record()
                if row.state in (SearchState.SUCCEEDED.value, SearchState.FAILED.value):
                    raise ConflictError(f"search {search_id} already {row.state}")
        raise ConflictError(f"search {search_id} changed state while being canceled; try again")

    def delete_search(self, search_id: str) -> None:
        """Delete an ended search (``ConflictError`` until it has ended). Its trials and their reports
        go with it through the schema's ``ON DELETE CASCADE`` foreign keys (SQLite connections turn
        foreign keys on). A supernet it trained stays: it is a resource others may use."""
        with Session(self.engine) as s, s.begin():
            row = search_row(s, search_id)
            if not SearchState(row.state).is_terminal:
                raise ConflictError(
                    f"search {search_id} is {row.state}; cancel or stop it, then delete it once it has ended"
                )
            s.delete(row)

    def update_budget(self, search_id: str, budget: dict[str, Any]) -> SearchRecord:
        """Replace the budget in the spec of a search that has not ended (the running driver reads it)."""
        with Session(self.engine) as s, s.begin():
            row = search_row(s, search_id)
            if SearchState(row.state).is_terminal:
                raise ConflictError(f"search {search_id} already {row.state}; its budget cannot change")
            row.spec = {**row.spec, "budget": budget}  # a new dict, so that the JSON column is written
            return row.to_record()

    def request_pause(self, search_id: str) -> SearchRecord:
        """Queued: paused now; running: no new trials, running ones pause after their step, then paused."""
        return self._apply_verb(
            search_id,
            "pause",
            now={SearchState.QUEUED: (SearchState.PAUSED, "paused by user")},
            later={
                SearchState.RUNNING: (
                    SearchState.RUNNING,
                    "pause requested: running trials pause after their step",
                )
            },
            unchanged=(SearchState.PAUSED,),
        )

    def request_resume(self, search_id: str) -> SearchRecord:
        """Paused: queued again (it resumes from its stored trials); a pending pause request is withdrawn;
        a queued search is left as it is."""
        for _ in range(3):
            with Session(self.engine) as s, s.begin():
                if self._update_search(
                    s,
                    search_id,
                    (SearchState.PAUSED.value,),
                    "resumed by user",
                    state=SearchState.QUEUED.value,
                ):
                    return search_row(s, search_id).to_record()
                row = search_row(s, search_id)
                if row.state == SearchState.QUEUED.value:
                    return row.to_record()
                if row.state == SearchState.RUNNING.value and row.requested_action == "pause":
                    if self._update_search(
                        s, search_id, (SearchState.RUNNING.value,), "pause withdrawn", requested_action=None
                    ):
                        return search_row(s, search_id).to_record()
                    continue
                raise ConflictError(f"search {search_id} is {row.state}, not paused; cannot resume it")
        raise ConflictError(f"search {search_id} changed state while being resumed; try again")

    def request_stop(self, search_id: str) -> SearchRecord:
        """Queued/paused: ends ``succeeded`` now; running: no new trials, running ones finish, then ends."""
        return self._apply_verb(
            search_id,
            "stop",
            now={
                SearchState.QUEUED: (SearchState.SUCCEEDED, "stopped by user"),
                SearchState.PAUSED: (SearchState.SUCCEEDED, "stopped by user"),
            },
            later={SearchState.RUNNING: (SearchState.STOPPING, "stop requested: running trials finish")},
            unchanged=(SearchState.STOPPING,),
        )

    def _apply_verb(
        self,
        search_id: str,
        action: str,
        now: dict[SearchState, tuple[SearchState, str]],
        later: dict[SearchState, tuple[SearchState, str]],
        unchanged: tuple[SearchState, ...],
    ) -> SearchRecord:
        """Move the search by its current state: at once (``now``), or flag ``action`` for the
        dispatcher (``later``); each transition is a conditional UPDATE, retried if the state moved."""
        for _ in range(3):
            with Session(self.engine) as s, s.begin():
                current = SearchState(search_row(s, search_id).state)
                if current in now:
                    state, reason = now[current]
                    finished = {"finished_at": utcnow()} if state.is_terminal else {}
                    if self._update_search(
                        s,
                        search_id,
                        (current.value,),
                        reason=reason,
                        state=state.value,
                        requested_action=None,
                        **finished,
                    ):
                        if state.is_terminal:  # a paused search's set-aside trials will not resume
                            end_unfinished_trials(s, search_id, TrialState.CANCELED, reason)
                            _cancel_own_untrained_supernet(s, search_id, reason)
                        return search_row(s, search_id).to_record()
                elif current in later:
                    state, reason = later[current]
                    if self._update_search(
                        s,
                        search_id,
                        (current.value,),
                        reason=reason,
                        state=state.value,
                        requested_action=action,
                    ):
                        return search_row(s, search_id).to_record()
                else:
                    row = search_row(s, search_id)
                    if current in unchanged or row.requested_action == action:
                        return row.to_record()
                    raise ConflictError(f"search {search_id} is {current.value}; cannot {action} it")
        raise ConflictError(f"search {search_id} changed state during {action}; try again")

    @staticmethod
    def _update_search(
        s: Session, search_id: str, from_states: tuple[str, ...], reason: str, **values: Any
    ) -> bool:
        result = s.execute(
            update(SearchRow)
            .where(SearchRow.id == search_id, SearchRow.state.in_(from_states))
            .values(state_reason=reason, updated_at=utcnow(), **values),
            execution_options=NO_SYNC,
        )
        s.expire_all()  # rows loaded earlier in this session must be read again
        return result.rowcount == 1

    def interrupted_searches(self) -> list[SearchRecord]:
        """The searches a previous process left running or stopping (to recover)."""
        with Session(self.engine) as s:
            rows = s.scalars(select(SearchRow).where(SearchRow.state.in_(_ACTIVE_SEARCHES)))
            return [row.to_record() for row in rows]

    def recover_interrupted_searches(self) -> list[str]:
        """After a restart, searches that were running are requeued (or paused, stopped or canceled
        as their user asked). Their unfinished trials are paused, to resume from their last checkpoint
        (or start again, if they never reported), unless the search ends here: then they are lost."""
        requeued: list[str] = []
        with Session(self.engine) as s, s.begin():
            now = utcnow()
            for row in s.scalars(select(SearchRow).where(SearchRow.state.in_(_ACTIVE_SEARCHES))).all():
                if row.cancel_requested:
                    row.state, row.state_reason = SearchState.CANCELED.value, "canceled by user"
                    row.finished_at = now
                elif row.requested_action == "stop":
                    row.state, row.state_reason = SearchState.SUCCEEDED.value, "stopped by user"
                    row.finished_at = now
                elif row.requested_action == "pause":
                    row.state, row.state_reason = SearchState.PAUSED.value, "paused by user"
                else:
                    row.state, row.state_reason = SearchState.QUEUED.value, "requeued after service restart"
                    requeued.append(row.id)
                row.requested_action = None
                if SearchState(row.state).is_terminal:
                    end_unfinished_trials(s, row.id, TrialState.LOST, _LOST_IN_RESTART)
                else:  # it runs again: its trials resume from their checkpoints or start again
                    set_aside_unfinished_trials(s, row.id, _LOST_IN_RESTART)
        return requeued


def _cancel_own_untrained_supernet(session: Session, search_id: str, reason: str) -> None:
    """A search that ends before training its own supernet leaves it canceled, not queued for ever: a
    search waiting for it is then claimed and failed with this reason, and new ones are refused."""
    session.execute(
        update(SupernetRow)
        .where(SupernetRow.search_id == search_id, SupernetRow.state.in_(_UNTRAINED))
        .values(state=SupernetState.CANCELED.value, state_reason=f"{reason} (search {search_id})")
    )

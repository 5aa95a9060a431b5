"""The trial half of Storage: creating trials, their reports (learning curves), finishing and listing them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, selectinload

from service.storage.models import TrialReportRow, TrialRow, utcnow
from service.storage.queries import (
    NO_SYNC,
    UNFINISHED_TRIALS,
    check_page_size,
    decode_token,
    encode_token,
    once_more_on_integrity_error,
    search_row,
    trial_row,
)
from service.storage.unfinished import end_unfinished_trials, set_aside_unfinished_trials
from supernas.errors import InvalidInputError
from supernas.records import Page, TrialRecord
from supernas.states import TrialState


class TrialStore:
    """Trial methods of :class:`service.storage.Storage`; each runs in its own short transaction."""

    engine: Engine

    def create_trial(
        self, search_id: str, number: int, config: dict[str, Any], suggestion: dict[str, Any] | None = None
    ) -> TrialRecord:
        """A pending trial; creating the same (search_id, number) again returns the existing one.

        ``suggestion`` is what the strategy predicted for the config (means, stds, acquisition value).
        """

        def create() -> TrialRecord:
            with Session(self.engine) as s, s.begin():
                found = s.scalar(
                    select(TrialRow).where(TrialRow.search_id == search_id, TrialRow.number == number)
                )
                if found is not None:
                    return found.to_record()
                search_row(s, search_id)
                row = TrialRow(
                    search_id=search_id,
                    number=number,
                    state=TrialState.PENDING.value,
                    config=config,
                    metrics={},
                    suggestion=suggestion,
                )
                s.add(row)
                s.flush()
                return row.to_record()

        return once_more_on_integrity_error(create)

    def mark_trial_running(self, search_id: str, number: int) -> None:
        """A pending trial starts, or a paused one resumes (the reason it was paused is cleared); it
        keeps the time it first started."""
        startable = (TrialState.PENDING.value, TrialState.PAUSED.value)
        with Session(self.engine) as s, s.begin():
            trial = trial_row(s, search_id, number)
            s.execute(
                update(TrialRow)
                .where(TrialRow.pk == trial.pk, TrialRow.state.in_(startable))
                .values(
                    state=TrialState.RUNNING.value,
                    state_reason=None,
                    started_at=func.coalesce(TrialRow.started_at, utcnow()),
                ),
                execution_options=NO_SYNC,
            )

    def record_trial_report(
        self, search_id: str, number: int, step: int, fidelity: float, metrics: dict[str, Any]
    ) -> None:
        """Store one learning-curve point; the same step twice is a no-op.

        The trial's current metrics and fidelity follow its latest step while it is unfinished
        (a late, older step is stored but does not overwrite them).
        """

        def record() -> None:
            with Session(self.engine) as s, s.begin():
                trial = trial_row(s, search_id, number)
                of_trial = TrialReportRow.trial_pk == trial.pk
                duplicate = s.scalar(select(TrialReportRow.pk).where(of_trial, TrialReportRow.step == step))
                if duplicate is not None:
                    return
                latest = s.scalar(select(func.max(TrialReportRow.step)).where(of_trial))
                s.add(TrialReportRow(trial_pk=trial.pk, step=step, fidelity=float(fidelity), metrics=metrics))
                if TrialState(trial.state).is_terminal or (latest is not None and latest > step):
                    return
                trial.metrics, trial.fidelity = metrics, float(fidelity)
                if trial.state == TrialState.PENDING.value:
                    trial.state = TrialState.RUNNING.value
                    trial.started_at = trial.started_at or utcnow()

        once_more_on_integrity_error(record)

    def record_trial_retry(
        self, search_id: str, number: int, reason: str, attempt: int | None = None
    ) -> TrialRecord:
        """Append a retry to the trial's history: ``{"at", "reason", "attempt"}``.

        ``reason`` is why the previous attempt ended (its error, or ``worker lost: ...``);
        ``attempt`` numbers the retry (1 for the first), by default one more than those recorded.
        The trial's state is untouched: it goes on running.
        """
        with Session(self.engine) as s, s.begin():
            trial = trial_row(s, search_id, number)
            retries = list(trial.retries or [])
            retries.append(
                {
                    "at": utcnow().isoformat(),
                    "reason": reason[:2000],
                    "attempt": len(retries) + 1 if attempt is None else int(attempt),
                }
            )
            trial.retries = retries  # a new list, so the JSON column is written
            s.flush()
            return trial.to_record()

    def record_trial_decision(self, search_id: str, number: int, decision: dict[str, Any]) -> TrialRecord:
        """Append a scheduler's decision to the trial's history: ``{"at", **decision}``.

        ``decision`` holds ``action`` (continue, promote, pause, resume, stop, start...), ``fidelity``
        and ``reason`` (cut to 2000 characters), and where the scheduler has them ``rung``,
        ``predicted`` and ``acquisition``. On an unfinished trial, ``pause`` makes it paused; other
        actions leave its state alone: a resumed trial is running once Ray Tune starts it again
        (``mark_trial_running``), which may wait for a free worker, and a stop is followed by
        ``finish_trial``. A decision about a finished trial is kept as history and changes nothing.
        """
        entry: dict[str, Any] = {"at": utcnow().isoformat(), **decision}
        if isinstance(entry.get("reason"), str):
            entry["reason"] = entry["reason"][:2000]
        moves = {"pause": {"state": TrialState.PAUSED.value}}
        with Session(self.engine) as s, s.begin():
            trial = trial_row(s, search_id, number)
            trial.decisions = [*(trial.decisions or []), entry]  # a new list, so the JSON column is written
            s.flush()
            action = decision.get("action")
            move = moves.get(action) if isinstance(action, str) else None
            if move is not None:  # only while unfinished: the first terminal state wins
                s.execute(
                    update(TrialRow)
                    .where(TrialRow.pk == trial.pk, TrialRow.state.in_(UNFINISHED_TRIALS))
                    .values(**move),
                    execution_options=NO_SYNC,
                )
                s.refresh(trial)
            return trial.to_record()

    def finish_trial(
        self,
        search_id: str,
        number: int,
        state: TrialState,
        reason: str | None = None,
        artifact_dir: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> TrialRecord:
        """Move an unfinished trial to a terminal state; the first terminal state wins."""
        if not state.is_terminal:
            raise InvalidInputError(f"{state.value!r} is not a terminal trial state", ("state",))
        values: dict[str, Any] = {"state": state.value, "state_reason": reason, "finished_at": utcnow()}
        if artifact_dir is not None:
            values["artifact_dir"] = artifact_dir
        if metrics is not None:
            values["metrics"] = metrics
        with Session(self.engine) as s, s.begin():
            trial = trial_row(s, search_id, number)
            s.execute(
                update(TrialRow)
                .where(TrialRow.pk == trial.pk, TrialRow.state.in_(UNFINISHED_TRIALS))
                .values(**values),
                execution_options=NO_SYNC,
            )
            s.refresh(trial)
            return trial.to_record()

    def cancel_unfinished_trials(self, search_id: str, reason: str) -> int:
        """The search ended: its pending, running and paused trials are canceled."""
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            return end_unfinished_trials(s, search_id, TrialState.CANCELED, reason)

    def set_aside_unfinished_trials(self, search_id: str, reason: str) -> int:
        """The search stops but will run again: its unfinished trials are paused, to resume from their
        last checkpoint (or start again, if they never reported). Returns how many were paused."""
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            return set_aside_unfinished_trials(s, search_id, reason)

    def get_trial(self, search_id: str, number: int) -> TrialRecord:
        with Session(self.engine) as s, s.begin():
            return trial_row(s, search_id, number, with_reports=True).to_record(with_reports=True)

    def list_trials(
        self, search_id: str, page_size: int, page_token: str | None = None, state: TrialState | None = None
    ) -> Page[TrialRecord]:
        """By number ascending, without reports; ``total`` counts the trials that match ``state``."""
        check_page_size(page_size)
        after = decode_token(page_token, "after")
        matching = [TrialRow.search_id == search_id]
        if state is not None:
            matching.append(TrialRow.state == state.value)
        stmt = select(TrialRow).where(*matching).order_by(TrialRow.number).limit(page_size + 1)
        if after is not None:
            stmt = stmt.where(TrialRow.number > after)
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            rows = list(s.scalars(stmt))
            total = s.scalar(select(func.count()).select_from(TrialRow).where(*matching)) or 0
            token = encode_token({"after": rows[page_size - 1].number}) if len(rows) > page_size else None
            return Page([row.to_record() for row in rows[:page_size]], token, total)

    def all_trials(
        self, search_id: str, with_reports: bool = True, unfinished_only: bool = False
    ) -> list[TrialRecord]:
        """Every trial (or every unfinished one) by number; ``with_reports=False`` skips loading the
        learning curves."""
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            stmt = select(TrialRow).where(TrialRow.search_id == search_id).order_by(TrialRow.number)
            if unfinished_only:
                stmt = stmt.where(TrialRow.state.in_(UNFINISHED_TRIALS))
            if with_reports:
                stmt = stmt.options(selectinload(TrialRow.reports))
            return [row.to_record(with_reports=with_reports) for row in s.scalars(stmt)]

    def trial_counts(self, search_id: str) -> dict[str, int]:
        counts = {state.value: 0 for state in TrialState}
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            stmt = (
                select(TrialRow.state, func.count())
                .where(TrialRow.search_id == search_id)
                .group_by(TrialRow.state)
            )
            for state, count in s.execute(stmt):
                counts[state] = count
        return counts

    def next_trial_number(self, search_id: str) -> int:
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            highest = s.scalar(select(func.max(TrialRow.number)).where(TrialRow.search_id == search_id))
            return 0 if highest is None else highest + 1

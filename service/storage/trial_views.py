"""Read-only trial queries for the dashboard: light outcome rows, sorted pages and the change feed.

These select only the columns a view needs (no configs or learning curves unless asked), so a
search with 10,000 trials is summarised in one short query.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from service.storage.models import TrialRow, aware_utc, optional_utc
from service.storage.queries import check_page_size, decode_token, encode_token, search_row
from supernas.errors import InvalidInputError
from supernas.records import Page, TrialRecord
from supernas.states import TrialState

SORT_COLUMNS = ("number", "state", "fidelity")  # besides any metric name


@dataclass(frozen=True)
class TrialOutcome:
    """What the summaries of a search need from one trial: no config, no learning curve."""

    number: int
    state: TrialState
    metrics: dict[str, Any]
    fidelity: float | None
    state_reason: str | None
    finished_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class ChangeCursor:
    """Position in a search's change feed: the last (updated_at, pk) seen."""

    updated_at: datetime
    pk: int

    def encode(self) -> str:
        raw = json.dumps({"t": self.updated_at.isoformat(), "pk": self.pk}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def decode(token: str) -> ChangeCursor:
        try:
            payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            return ChangeCursor(aware_utc(datetime.fromisoformat(payload["t"])), int(payload["pk"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError("invalid cursor", ("query", "after")) from exc


_EPOCH_CURSOR = ChangeCursor(datetime.fromisoformat("1970-01-01T00:00:00+00:00"), 0)


def _metric_key(metrics: dict[str, Any] | None, metric: str) -> float | None:
    """The metric as a sortable float, or None when missing, not a number or NaN."""
    value = (metrics or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


class TrialViewStore:
    """Dashboard reads of :class:`service.storage.Storage`."""

    engine: Engine

    def trial_outcomes(self, search_id: str, finished_before: datetime | None = None) -> list[TrialOutcome]:
        """Every trial of the search by number (only those finished before ``finished_before`` if given)."""
        columns = (
            TrialRow.number,
            TrialRow.state,
            TrialRow.metrics,
            TrialRow.fidelity,
            TrialRow.state_reason,
            TrialRow.finished_at,
            TrialRow.updated_at,
        )
        stmt = select(*columns).where(TrialRow.search_id == search_id).order_by(TrialRow.number)
        if finished_before is not None:
            stmt = stmt.where(TrialRow.finished_at.is_not(None), TrialRow.finished_at < finished_before)
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            return [
                TrialOutcome(
                    number=number,
                    state=TrialState(state),
                    metrics=metrics or {},
                    fidelity=fidelity,
                    state_reason=reason,
                    finished_at=optional_utc(finished_at),
                    updated_at=aware_utc(updated_at),
                )
                for number, state, metrics, fidelity, reason, finished_at, updated_at in s.execute(stmt)
            ]

    def trials_stamp(self, search_id: str) -> tuple[int, str | None, int]:
        """Changes whenever a trial of the search is created or changed: (trials, latest change,
        trials changed at that instant). One cheap statement on the (search_id, updated_at) index."""
        of_search = TrialRow.search_id == search_id
        latest = select(func.max(TrialRow.updated_at)).where(of_search).scalar_subquery()
        at_latest = select(func.count()).where(of_search, TrialRow.updated_at == latest).scalar_subquery()
        with Session(self.engine) as s, s.begin():
            count, newest, tied = s.execute(
                select(func.count(), func.max(TrialRow.updated_at), at_latest).where(of_search)
            ).one()
            return count, None if newest is None else str(newest), tied or 0

    def trial_configs(self, search_id: str, numbers: list[int]) -> dict[int, dict[str, Any]]:
        """number -> config of the given trials."""
        result: dict[int, dict[str, Any]] = {}
        with Session(self.engine) as s, s.begin():
            for start in range(0, len(numbers), 500):  # keep the IN lists short
                chunk = numbers[start : start + 500]
                stmt = select(TrialRow.number, TrialRow.config).where(
                    TrialRow.search_id == search_id, TrialRow.number.in_(chunk)
                )
                result.update({number: config for number, config in s.execute(stmt)})
        return result

    def trials_by_number(
        self, search_id: str, numbers: list[int], with_reports: bool = False
    ) -> list[TrialRecord]:
        """The given trials (unknown numbers are skipped), in the order of ``numbers``."""
        found: dict[int, TrialRecord] = {}
        with Session(self.engine) as s, s.begin():
            for start in range(0, len(numbers), 500):  # keep the IN lists short
                stmt = select(TrialRow).where(
                    TrialRow.search_id == search_id, TrialRow.number.in_(numbers[start : start + 500])
                )
                if with_reports:
                    stmt = stmt.options(selectinload(TrialRow.reports))
                found.update({row.number: row.to_record(with_reports) for row in s.scalars(stmt)})
        return [found[n] for n in numbers if n in found]

    def recently_updated_trials(
        self, search_id: str, page_size: int, page_token: str | None = None
    ) -> Page[TrialRecord]:
        """Trials with their learning curves, most recently changed first, offset-paged."""
        check_page_size(page_size)
        offset = decode_token(page_token, "offset") or 0
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            of_search = TrialRow.search_id == search_id
            total = s.scalar(select(func.count()).select_from(TrialRow).where(of_search)) or 0
            stmt = (
                select(TrialRow)
                .where(of_search)
                .order_by(TrialRow.updated_at.desc(), TrialRow.pk.desc())
                .offset(offset)
                .limit(page_size)
                .options(selectinload(TrialRow.reports))
            )
            rows = list(s.scalars(stmt))
            token = encode_token({"offset": offset + page_size}) if offset + page_size < total else None
            return Page([row.to_record(with_reports=True) for row in rows], token, total)

    def sorted_trials(
        self,
        search_id: str,
        page_size: int,
        page_token: str | None,
        state: TrialState | None,
        sort: str,
        descending: bool,
    ) -> Page[TrialRecord]:
        """Trials ordered by ``sort`` (a column of SORT_COLUMNS or a metric name; trials without a value
        for the metric come last), offset-paged. Sorting by a metric happens here rather than in SQL
        because metrics live in a JSON column whose non-finite markers SQL cannot order."""
        check_page_size(page_size)
        offset = decode_token(page_token, "offset") or 0
        matching = [TrialRow.search_id == search_id]
        if state is not None:
            matching.append(TrialRow.state == state.value)
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            total = s.scalar(select(func.count()).select_from(TrialRow).where(*matching)) or 0
            if sort in SORT_COLUMNS:
                column = getattr(TrialRow, sort)
                order = column.desc() if descending else column.asc()
                stmt = (
                    select(TrialRow)
                    .where(*matching)
                    .order_by(order.nulls_last(), TrialRow.number)
                    .offset(offset)
                    .limit(page_size)
                )
                rows = list(s.scalars(stmt))
            else:
                keyed = [
                    (pk, _metric_key(metrics, sort))
                    for pk, metrics in s.execute(
                        select(TrialRow.pk, TrialRow.metrics).where(*matching).order_by(TrialRow.number)
                    )
                ]
                with_value = sorted(
                    (k for k in keyed if k[1] is not None), key=lambda k: k[1], reverse=descending
                )
                ordered = [pk for pk, _ in with_value] + [pk for pk, value in keyed if value is None]
                page_pks = ordered[offset : offset + page_size]
                by_pk = {row.pk: row for row in s.scalars(select(TrialRow).where(TrialRow.pk.in_(page_pks)))}
                rows = [by_pk[pk] for pk in page_pks]
            more = offset + page_size < total
            token = encode_token({"offset": offset + page_size}) if more else None
            return Page([row.to_record() for row in rows], token, total)

    def trial_changes(
        self, search_id: str, after: ChangeCursor | None, limit: int
    ) -> tuple[list[TrialRecord], ChangeCursor, bool]:
        """Trials created or changed after ``after`` (oldest change first), the new cursor, and whether
        more remain. Without ``after``: no trials, only the current cursor."""
        with Session(self.engine) as s, s.begin():
            search_row(s, search_id)
            of_search = TrialRow.search_id == search_id
            if after is None:
                last = s.execute(
                    select(TrialRow.updated_at, TrialRow.pk)
                    .where(of_search)
                    .order_by(TrialRow.updated_at.desc(), TrialRow.pk.desc())
                    .limit(1)
                ).first()
                cursor = _EPOCH_CURSOR if last is None else ChangeCursor(aware_utc(last[0]), last[1])
                return [], cursor, False
            newer = or_(
                TrialRow.updated_at > after.updated_at,
                and_(TrialRow.updated_at == after.updated_at, TrialRow.pk > after.pk),
            )
            stmt = (
                select(TrialRow)
                .where(of_search, newer)
                .order_by(TrialRow.updated_at, TrialRow.pk)
                .limit(limit + 1)
            )
            rows = list(s.scalars(stmt))
            more = len(rows) > limit
            rows = rows[:limit]
            cursor = after if not rows else ChangeCursor(aware_utc(rows[-1].updated_at), rows[-1].pk)
            return [row.to_record() for row in rows], cursor, more

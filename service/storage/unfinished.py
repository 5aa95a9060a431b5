"""What becomes of a search's unfinished trials when the search stops running.

A search that will run again (requeued after a shutdown or a crash, or paused by its user) keeps
each trial that already reported a step ``paused``: the next run resumes it from its last
checkpoint (``workers.trial_checkpoints``). Trials that never reported have nothing to resume and
end at once. A search that ends for good ends all of its unfinished trials.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from service.storage.models import TrialRow, utcnow
from service.storage.queries import NO_SYNC, UNFINISHED_TRIALS
from supernas.states import TrialState

RESUMES = "resumes from its last checkpoint when the search runs again"


def end_unfinished_trials(
    s: Session, search_id: str, state: TrialState, reason: str, *conditions: ColumnElement[bool]
) -> int:
    """Move the unfinished trials of the search (those that also meet ``conditions``) to the
    terminal ``state``; how many moved."""
    result = s.execute(
        update(TrialRow)
        .where(TrialRow.search_id == search_id, TrialRow.state.in_(UNFINISHED_TRIALS), *conditions)
        .values(state=state.value, state_reason=reason, finished_at=utcnow()),
        execution_options=NO_SYNC,
    )
    return result.rowcount


def set_aside_unfinished_trials(s: Session, search_id: str, reason: str, others: TrialState) -> int:
    """Pause the unfinished trials that reported at least one step (the search's next run resumes
    them) and end the others as ``others``; how many were paused."""
    result = s.execute(
        update(TrialRow)
        .where(
            TrialRow.search_id == search_id,
            TrialRow.state.in_(UNFINISHED_TRIALS),
            TrialRow.fidelity.is_not(None),
        )
        .values(state=TrialState.PAUSED.value, state_reason=f"{reason}: {RESUMES}"),
        execution_options=NO_SYNC,
    )
    end_unfinished_trials(s, search_id, others, reason, TrialRow.fidelity.is_(None))
    return result.rowcount

"""What becomes of a search's unfinished trials when the search stops running.

A search that will run again (requeued after a shutdown or a crash, or paused by its user) keeps
each of its unfinished trials ``paused``: the next run resumes a trial that already reported a step
from its last checkpoint (``workers.trial_checkpoints``), and starts one that never reported (created,
or started but not as far as its first report) again from the beginning, under the same number and
config. A search that ends for good ends all of its unfinished trials.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.storage.models import TrialRow, utcnow
from service.storage.queries import NO_SYNC, UNFINISHED_TRIALS
from supernas.states import TrialState

RESUMES = "resumes from its last checkpoint when the search runs again"
STARTS_AGAIN = "starts again from the beginning when the search runs again"


def end_unfinished_trials(s: Session, search_id: str, state: TrialState, reason: str) -> int:
    """Move the unfinished trials of the search to the terminal ``state``; how many moved."""
    result = s.execute(
        update(TrialRow)
        .where(TrialRow.search_id == search_id, TrialRow.state.in_(UNFINISHED_TRIALS))
        .values(state=state.value, state_reason=reason, finished_at=utcnow()),
        execution_options=NO_SYNC,
    )
    return result.rowcount


def set_aside_unfinished_trials(s: Session, search_id: str, reason: str) -> int:
    """Pause the unfinished trials, for the search's next run to resume those that reported at least
    one step and to start the others again; how many were paused."""
    paused = 0
    for which, then in (
        (TrialRow.fidelity.is_not(None), RESUMES),
        (TrialRow.fidelity.is_(None), STARTS_AGAIN),
    ):
        result = s.execute(
            update(TrialRow)
            .where(TrialRow.search_id == search_id, TrialRow.state.in_(UNFINISHED_TRIALS), which)
            .values(state=TrialState.PAUSED.value, state_reason=f"{reason}: {then}"),
            execution_options=NO_SYNC,
        )
        paused += result.rowcount
    return paused

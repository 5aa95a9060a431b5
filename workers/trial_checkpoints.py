"""Where a search's runs keep their trials' checkpoints, and finding the one a set-aside trial resumes from.

Each run of a search (one per attempt: the first, and one after each requeue or resume) is a Ray
Tune experiment under ``{artifacts}/ray_results/{search_id}-attempt{N}``; Tune copies every trial
checkpoint there as ``{tune trial}/checkpoint_*``. Next to the trial's state each checkpoint holds a
small JSON file naming the trial and the last fidelity step it covers, so that a later run can find
the checkpoint of a trial that was paused (or running) when the search stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supernas.records import TrialRecord

CHECKPOINT_FILE = "trial_state.pt"
CHECKPOINT_INFO = "trial_state.json"


def runs_root(artifacts_root: str | Path) -> Path:
    return Path(artifacts_root) / "ray_results"


def search_artifacts(artifacts_root: str | Path, search_id: str) -> list[Path]:
    """Every directory a search writes: its trials' models and checkpoints (and, for searches made
    before supernets were a resource, its supernet) and the Tune experiment of each of its runs."""
    root = Path(artifacts_root)
    return [root / "searches" / search_id, *sorted(runs_root(root).glob(f"{search_id}-attempt*"))]


def run_name(search_id: str, attempt: int) -> str:
    return f"{search_id}-attempt{attempt}"


def write_checkpoint_info(directory: Path, number: int, fidelity: int) -> None:
    (directory / CHECKPOINT_INFO).write_text(json.dumps({"number": number, "fidelity": fidelity}))


@dataclass(frozen=True)
class ResumedTrial:
    """A trial set aside when its search stopped, to go on from its checkpoint in the next run."""

    number: int
    config: dict[str, Any]
    fidelity: int | None  # the last fidelity step it reported (and its checkpoint covers)
    reports: list[tuple[float, dict[str, Any]]]  # its stored (fidelity, metrics) reports
    last_step: int  # the step number of its last stored report (the next run's reports follow it)
    checkpoint: str | None  # None: it never reported, and starts again from the beginning


def kept_checkpoints(artifacts_root: str | Path, search_id: str, attempt: int) -> dict[tuple[int, int], Path]:
    """Every checkpoint the runs before ``attempt`` kept, by (trial number, fidelity step); where
    two runs kept one for the same step, the later run's."""
    kept: dict[tuple[int, int], Path] = {}
    for earlier in range(1, attempt):
        run = runs_root(artifacts_root) / run_name(search_id, earlier)
        for info_path in sorted(run.glob(f"*/checkpoint_*/{CHECKPOINT_INFO}")):
            try:
                info = json.loads(info_path.read_text())
            except (OSError, ValueError):  # cut short by a crash while Tune copied it
                continue
            if (info_path.parent / CHECKPOINT_FILE).is_file():
                kept[(info.get("number"), info.get("fidelity"))] = info_path.parent
    return kept


def resumable_trials(
    artifacts_root: str | Path, search_id: str, attempt: int, set_aside: Sequence[TrialRecord]
) -> tuple[list[ResumedTrial], dict[int, str]]:
    """Of the trials set aside when the search's last run stopped: those that never reported (to
    start again) and those whose checkpoint of their last reported step was found (to resume from
    it), and why each other one cannot go on."""
    resumed: list[ResumedTrial] = []
    missing: dict[int, str] = {}
    kept = kept_checkpoints(artifacts_root, search_id, attempt) if set_aside else {}
    for trial in set_aside:
        if not trial.reports or trial.fidelity is None:
            resumed.append(ResumedTrial(trial.number, trial.config, None, [], 0, None))
            continue
        fidelity = int(trial.fidelity)
        checkpoint = kept.get((trial.number, fidelity))
        if checkpoint is None:
            missing[trial.number] = f"worker lost: no checkpoint of its fidelity step {fidelity} was kept"
            continue
        reports = [(r.fidelity, r.metrics) for r in trial.reports]
        last_step = max(r.step for r in trial.reports)
        resumed.append(
            ResumedTrial(trial.number, trial.config, fidelity, reports, last_step, str(checkpoint))
        )
    return resumed, missing

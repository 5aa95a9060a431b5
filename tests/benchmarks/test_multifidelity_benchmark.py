"""The multi-fidelity benchmark's runner on a tiny setting: regrets, ranks and budget ratios are
computed from real simulated runs, and the JSON and PNG are written."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.mf_problems import load_problem
from benchmarks.mf_trace import describe, trace_run
from benchmarks.multifidelity import FRACTIONS, main, summarise

METHODS = ("supernas-asha", "supernas-freeze_thaw", "random-full")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("mf_bench") / "mf.json"
    argv = ["--problems", "branin-mf", "--methods", ",".join(METHODS), "--seeds", "2", "--budget", "3"]
    return main([*argv, "--out", str(out)]), out


def test_writes_json_and_png(tiny_run: tuple[dict, Path]) -> None:
    doc, out = tiny_run
    assert out.with_suffix(".png").stat().st_size > 0
    assert json.loads(out.read_text())["summary"] == doc["summary"]
    assert len(doc["runs"]) == 2 * len(METHODS)


def test_regret_is_monotone_and_ranks_are_averaged(tiny_run: tuple[dict, Path]) -> None:
    doc, _ = tiny_run
    for run in doc["runs"]:
        regret = run["regret_by_budget"]
        assert len(regret) == len(FRACTIONS) and all(0 <= r <= 1 for r in regret)
        assert all(a >= b for a, b in itertools.pairwise(regret))  # the incumbent only improves
    ranks = doc["summary"]["regret_by_budget"]["mean_rank"]
    final = [ranks[m][-1] for m in METHODS]
    assert all(1 <= r <= len(METHODS) for r in final)
    assert sum(final) == pytest.approx(sum(range(1, len(METHODS) + 1)))  # ties share ranks
    assert doc["summary"]["best_ours"] in METHODS[:2]
    assert set(doc["summary"]["budget_needed"]) == {"random-full"}


def test_budget_needed_finds_the_first_fraction_matching_the_peer() -> None:
    flat = [0.5] * len(FRACTIONS)
    falling = list(np.linspace(1.0, 0.1, len(FRACTIONS)))
    runs = [
        {
            "problem": "p",
            "method": "supernas-asha",
            "seed": 0,
            "regret_by_budget": falling,
            "regret_by_time": falling,
        },
        {
            "problem": "p",
            "method": "random-full",
            "seed": 0,
            "regret_by_budget": flat,
            "regret_by_time": flat,
        },
    ]
    summary = summarise(runs, ["supernas-asha", "random-full"])
    first = next(f for f, r in zip(FRACTIONS, falling, strict=True) if r <= 0.5)
    assert summary["budget_needed"]["random-full"]["p"] == first
    assert summary["regret_by_budget"]["mean_rank"]["supernas-asha"][-1] == 1.0


def test_unknown_names_are_rejected() -> None:
    with pytest.raises(SystemExit, match="unknown problem"):
        main(["--problems", "nope", "--methods", "supernas-asha", "--seeds", "1", "--budget", "1"])
    with pytest.raises(SystemExit, match="unknown method"):
        main(["--problems", "branin-mf", "--methods", "nope", "--seeds", "1", "--budget", "1"])


def test_report_summarises_a_written_result_again(tiny_run: tuple[dict, Path]) -> None:
    doc, out = tiny_run
    again = main(["--report", str(out)])
    assert again["summary"] == json.loads(json.dumps(doc["summary"]))


def test_merge_replaces_only_the_methods_run_again(tiny_run: tuple[dict, Path], tmp_path: Path) -> None:
    doc, out = tiny_run
    copy = tmp_path / "mf.json"
    copy.write_text(out.read_text())
    argv = ["--problems", "branin-mf", "--seeds", "2", "--budget", "3", "--out", str(copy), "--merge"]
    merged = main([*argv, "--methods", "supernas-hyperband"])
    assert merged["settings"]["methods"] == [*METHODS, "supernas-hyperband"]
    kept = [r for r in merged["runs"] if r["method"] in METHODS]
    assert kept == doc["runs"]  # the earlier runs, untouched
    assert sorted(r["seed"] for r in merged["runs"] if r["method"] == "supernas-hyperband") == [0, 1]
    assert set(merged["summary"]["regret_by_budget"]["mean_rank"]) == {*METHODS, "supernas-hyperband"}
    assert merged["merged_runs"][-1]["methods"] == ["supernas-hyperband"]
    with pytest.raises(SystemExit, match="seeds differ"):
        main([*argv[:2], "--seeds", "1", *argv[4:], "--methods", "supernas-hyperband"])


def test_one_validation_example_of_a_recorded_table() -> None:
    """lc-fashion's errors count mistakes among its 256 validation images, so regrets convert to them."""
    fashion = load_problem("lc-fashion")
    assert fashion.one_example(0) == pytest.approx(1 / 256)
    errors = fashion.table.values[:, 0, :, 0] * 256
    assert np.allclose(errors, np.round(errors), atol=1e-4)  # whole numbers of misclassified images


def test_the_trace_accounts_for_every_trial_and_epoch() -> None:
    trace, values, best, typical = trace_run("branin-mf", "supernas-asha", seed=1)
    assert len(trace.time) == 20 * 30  # the benchmark's budget, in epochs
    half, _best_started, by_epochs, whole, *_ = describe(trace, values, best, typical)
    trials = int(half.split(", ")[1].split()[0])
    assert trials == len(set(trace.trial[:300]))
    counted = [pair.split(": ") for pair in by_epochs.split("trained: ")[1].split(", ")]
    assert sum(int(count) for _, count in counted) == trials
    assert whole.startswith("all of the budget (600 epochs)")

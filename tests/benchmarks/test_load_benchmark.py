"""The load benchmark's small path: 3 users for 3 s on SQLite against the real service (auth on) while a
tiny real search runs; the JSON holds the row, a positive request rate, no errors, no lost writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import load

pytestmark = pytest.mark.slow

TINY = [
    *("--clients", "3", "--duration-s", "3", "--databases", "sqlite"),
    *("--supernet-epochs", "1", "--finetune-epochs", "1", "--train-examples", "256"),
]


def test_small_load_run_has_its_row_no_errors_and_no_lost_writes(tmp_path: Path) -> None:
    doc = load.main([*TINY, "--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / load.RESULT_FILE).read_text())
    assert on_disk == json.loads(json.dumps(doc))

    (database,) = on_disk["databases"]
    assert database["database"] == "sqlite"
    assert database["unauthenticated_list_status"] == 401  # auth was on
    assert database["search_ran_throughout"] and database["search_final_state"] == "canceled"
    (row,) = on_disk["rows"]
    assert row["database"] == "sqlite" and row["clients"] == 3 and row["sse_readers"] == 1
    assert row["requests"] > 0 and row["requests_per_s"] > 0
    assert 0 < row["latency"]["p50_ms"] <= row["latency"]["p99_ms"]
    assert row["read"]["count"] + row["write"]["count"] == row["requests"]

    # three users cannot overload the service: every request must succeed
    assert row["errors"]["count"] == 0, row["errors"]
    assert row["errors"]["status_codes"] == {}

    writes = row["writes"]
    assert writes["created_201"] >= 1  # seed 0: user 2's first request is a write
    assert writes["mismatch_count"] == 0, writes["mismatches"]
    assert writes["listed"] == writes["created_201"] and writes["count_matches"]
    assert row["cancel"]["final_states"] == {"canceled": writes["created_201"]}
    assert row["cancel"]["ever_started"] == []

    sse = row["sse"]
    assert sse["events"] >= 1 and sse["by_event"].get("changes", 0) >= 1  # the first event comes at once
    assert not sse["errored"], sse["errors"]
    assert row["service_log"]["counts"]["database_locked"] == 0

    table = load.format_table(on_disk)
    assert "| sqlite | 3 |" in table

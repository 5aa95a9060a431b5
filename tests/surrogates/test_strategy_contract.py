"""Every registered strategy passes the shared contract on every contract problem."""

from __future__ import annotations

import pytest
from strategy_contract import CONTRACT_PROBLEMS, check_contract

from surrogates.registry import STRATEGIES


@pytest.mark.parametrize("problem_name", sorted(CONTRACT_PROBLEMS))
@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
def test_strategy_contract(strategy_name: str, problem_name: str) -> None:
    check_contract(STRATEGIES[strategy_name], CONTRACT_PROBLEMS[problem_name])

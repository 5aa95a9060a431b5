"""Surrogates and search strategies: pure compute over a search space and a history of observations."""

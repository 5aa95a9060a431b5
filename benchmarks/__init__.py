"""Benchmarks of supernas: programs that print a table and write a JSON result (not timed tests).

``python -m benchmarks.strategies`` compares every registered search strategy with Optuna's samplers
(and DyNAS-T's LINAS where it can run) on NAS-Bench-201 and BoTorch's multi-objective test problems,
by hypervolume regret over the same evaluation budget and seeds.
"""

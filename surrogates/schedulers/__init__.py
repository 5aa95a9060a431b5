"""Multi-fidelity scheduling policies: which trial continues, pauses, stops or resumes, and when a new
config starts. Pure compute (no Ray, no I/O): the Ray Tune adapter (``workers.fidelity_scheduler``)
and the simulated clock (``surrogates.schedulers.simulation``) drive the very same objects."""

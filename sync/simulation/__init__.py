"""A seeded, deterministic simulator that drives the real engine and planner against emulated
platforms on a virtual clock, injecting faults at every I/O boundary and crashes at every ledger
commit, and checking after every step that the books balance.

`run_seed(seed)` replays exactly for the same seed; `sweep` runs many seeds and aggregates.
"""

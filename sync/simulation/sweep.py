"""Run many seeds (in parallel processes) and add up what they saw."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from sync.logs import configure_logging
from sync.simulation.run import Figures, SeedResult, SimOptions, SimulationFailure, run_seed


@dataclass
class SweepResult(Figures):
    """The totals of a sweep (seeds that passed), and the seeds that failed with their replay line."""

    seeds: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: Figures) -> None:
        """Fold one seed's figures in."""
        super().add(other)
        self.seeds += 1


def _one(args: tuple[int, SimOptions]) -> SeedResult | str:
    seed, options = args
    configure_logging("critical", "json")
    try:
        return run_seed(seed, options)
    except SimulationFailure as failure:
        return str(failure)
    except Exception as err:  # a crash of the engine itself is a failure of that seed
        replay = f"stocksync simulate --seed {seed} --steps {options.steps}"
        return f"seed {seed} raised {type(err).__name__}: {err}\n  replay: {replay}"


def sweep(
    seeds: Iterable[int],
    options: SimOptions,
    *,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SweepResult:
    """Run every seed; failures are collected, not raised."""
    total = SweepResult()
    work = [(seed, options) for seed in seeds]
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1:
        results: Iterable[SeedResult | str] = map(_one, work)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs)
        results = pool.map(_one, work, chunksize=4)
    try:
        for done, result in enumerate(results, 1):
            if isinstance(result, str):
                total.failures.append(result)
            else:
                total.add(result)
            if progress:
                progress(done)
    finally:
        if jobs != 1:
            pool.shutdown()
    return total

"""`stocksync simulate`: the seeded fault simulator, one seed or a sweep."""

from __future__ import annotations

import json
import sys
from collections import Counter

import click

from sync.cli.common import EXIT_FAILED, EXIT_OK


@click.command()
@click.option("--seed", type=int, default=None, help="Run (or replay) this one seed.")
@click.option("--seeds", type=click.IntRange(min=1), default=200, show_default=True, help="Seeds in a sweep.")
@click.option("--first-seed", type=int, default=0, show_default=True, help="The sweep's first seed.")
@click.option("--steps", type=click.IntRange(min=1), default=100, show_default=True, help="Cycles per seed.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Parallel processes (default: CPUs).")
@click.option(
    "--bad-reads/--no-bad-reads",
    default=True,
    show_default=True,
    help="Let stock reads lie too (empty, zeros, garbage, truncated, a SKU twice).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the totals as JSON.")
def simulate(
    seed: int | None, seeds: int, first_seed: int, steps: int, jobs: int | None, bad_reads: bool, as_json: bool
) -> None:
    """Drive the real engine against emulated platforms on a virtual clock, with random sales,
    returns and hand edits, faults at every I/O boundary and crashes at every ledger commit, and
    check after every step that every unit is accounted for.

    Exit 0 when every seed passed; 1 when any failed (each failure prints its replay command).
    """
    from sync.simulation.run import SimOptions
    from sync.simulation.sweep import sweep

    options = SimOptions(steps=steps, bad_reads=bad_reads)
    chosen = [seed] if seed is not None else list(range(first_seed, first_seed + seeds))
    show = not as_json and sys.stderr.isatty()
    with click.progressbar(length=len(chosen), label="seeds", file=sys.stderr) if show else _nothing() as bar:
        last = 0

        def advance(done: int) -> None:
            nonlocal last
            if bar is not None:
                bar.update(done - last)
            elif done % 500 == 0 and len(chosen) > 500:  # off a terminal: a line now and then
                click.echo(f"simulate: {done}/{len(chosen)} seeds", err=True)
            last = done

        total = sweep(chosen, options, jobs=1 if seed is not None else jobs, progress=advance)
    figures = {
        "seeds": total.seeds + len(total.failures),
        "passed": total.seeds,
        "steps": total.steps,
        "faults_injected": dict(sorted(total.faults.items())),
        "lying_reads_told": dict(sorted(total.bad_reads.items())),
        "crashes_injected": dict(sorted(total.crashes.items())),
        "external_events": dict(sorted(total.events.items())),
        "in_doubt_pushes": total.in_doubt,
        "in_doubt_settled": dict(sorted(total.settled.items())),
        "misjudged_by_platform": _by_platform(total.misjudged, total.misjudged_units),
        "undecidable_by_platform": _by_platform(total.undecidable, total.undecidable_units),
        "ankorstore_units_in_set_windows": total.window_units,
        "units_lost_or_counted_twice_otherwise": 0 if not total.failures else None,
        "failures": total.failures,
    }
    if as_json:
        click.echo(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            if key != "failures":
                click.echo(f"{key.replace('_', ' ')}: {_plain(value)}")
        for failure in total.failures:
            click.echo(f"FAILED {failure}")
    sys.exit(EXIT_FAILED if total.failures else EXIT_OK)


def _plain(value: object) -> str:
    """A figure as a person reads it: `a 1, b 2` for a mapping (nested ones in brackets), `none`
    for an empty one, `unknown` for None."""
    if value is None:
        return "unknown (a seed failed)"
    if isinstance(value, dict):
        parts = [f"{k} ({_plain(v)})" if isinstance(v, dict) else f"{k} {_plain(v)}" for k, v in value.items()]
        return ", ".join(parts) or "none"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _by_platform(listings: Counter[str], units: Counter[str]) -> dict[str, dict[str, int]]:
    """Per platform: listings left off by a settlement, and the units."""
    return {platform: {"listings": listings[platform], "units": units[platform]} for platform in sorted(listings)}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

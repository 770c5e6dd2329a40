"""`stocksync init`: write a commented starting configuration for the platforms the user sells on."""

from __future__ import annotations

import re
from pathlib import Path

import click

from sync.cli.common import fail
from sync.cli.demo import bundled
from sync.platforms import PLATFORMS

EXAMPLE = "example.toml"
_ACCOUNT = "\n[[accounts]]\n"


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("stocksync.toml"),
    show_default=True,
    help="Where to write the configuration.",
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    type=click.Choice(sorted(PLATFORMS)),
    help="A platform you sell on (repeat it; default: one account of each).",
)
@click.option("--force", is_flag=True, help="Overwrite --out when it exists.")
def init(out: Path, platforms: tuple[str, ...], force: bool) -> None:
    """Write a commented starting configuration: every key explained, one [[accounts]] table per
    platform you sell on, its credentials read from environment variables (never written here).

    Then edit it (base URLs, locations, the catalogue), set the variables it names, and run
    `stocksync db upgrade` and `stocksync reconcile --dry-run`.
    """
    if out.exists() and not force:
        fail(f"--out: {out} already exists; pass --force to overwrite it, or choose another --out")
    text = starting_config(bundled(EXAMPLE).read_text(encoding="utf-8"), platforms)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as err:
        fail(f"--out: cannot write {out}: {err.strerror}")
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    names = sorted({name for line in settings for name in re.findall(r"\$\{([A-Z0-9_]+)\}", line)})
    files = sorted({path for line in settings for path in re.findall(r'_file = "([^"]+)"', line)})
    needs = [f"${name}" for name in names] + [f"the file {path}" for path in files]
    click.echo(f"wrote {out}")
    click.echo("next: edit it (base_url, locations, [catalog]), then provide " + ", ".join(needs or ["nothing"]))
    click.echo(f"      stocksync db upgrade --config {out} && stocksync reconcile --dry-run --config {out}")


def starting_config(example: str, platforms: tuple[str, ...]) -> str:
    """The example with only the [[accounts]] tables of `platforms` (all of them when empty)."""
    head, *accounts = example.split(_ACCOUNT)
    wanted = set(platforms) or set(PLATFORMS)
    kept = [block for block in accounts if re.search(r'^platform = "([a-z]+)"', block, re.M).group(1) in wanted]  # type: ignore[union-attr]
    return _ACCOUNT.join([head, *kept])

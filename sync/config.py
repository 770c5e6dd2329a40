"""The TOML configuration: loading, secret resolution and validation.

A bad file raises ConfigError naming the key, what is wrong and what to do. A credential may be
written plainly, as `${ENV_VAR}`, or through `<key>_file` (a container secret); a file holding
plain credentials that other users can read earns a warning.
"""

from __future__ import annotations

import csv
import os
import re
import stat
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sync.errors import ConfigError
from sync.judge import TrustRules
from sync.platforms import PLATFORMS, AccountSettings

ENV_VAR = "STOCKSYNC_CONFIG"
DEFAULT_PATH = "stocksync.toml"
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Identity problems reported in one error: enough to fix in one go, few enough to read.
_MAX_PROBLEMS = 5

if TYPE_CHECKING:
    AnyAccount = AccountSettings
else:
    # One settings model per registered platform, chosen by the `platform` key.
    AnyAccount = Annotated[
        Union[tuple(spec.settings for spec in PLATFORMS.values())],  # noqa: UP007
        Field(discriminator="platform"),
    ]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """`[database]`: where the ledger lives."""

    url: str = "sqlite:///stocksync.db"


class SyncSettings(_Section):
    """`[sync]`: how often and in what slices the daemon reconciles."""

    interval_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=2000, ge=1, le=100_000)
    in_doubt_timeout_seconds: float = Field(default=600.0, ge=0)
    # How long after its last departure a write whose answer was lost may still land (no platform
    # bounds it): until then a read may show it applied, never that it was not.
    late_landing_seconds: float = Field(default=60.0, ge=0)
    safety_min_listings: int = Field(default=10, ge=1)
    safety_max_drop_share: float = Field(default=0.5, gt=0, le=1)
    # A drop larger than this share of a listing (or to zero) that no order explains is read again
    # before it is booked.
    confirm_drop_share: float = Field(default=0.5, gt=0, le=1)
    # An account answering badly needs two agreeing confirmations; it counts as answering well
    # again after this long without a bad read.
    bad_read_quiet_seconds: float = Field(default=600.0, ge=0)
    # Several replicas on one PostgreSQL ledger: the catalogue is cut into `shards`, each reconciled
    # under its own lease of `lease_seconds` (a dead replica's shards pass on when they run out).
    shards: int = Field(default=1, ge=1, le=1024)
    lease_seconds: float = Field(default=30.0, ge=1)

    def trust_rules(self) -> TrustRules:
        """The read judge's thresholds, as the engine and the adapters use them."""
        return TrustRules(self.confirm_drop_share, self.safety_min_listings, self.safety_max_drop_share)


class OrderSettings(_Section):
    """`[orders]`: how often order feeds are read (each new order triggers an immediate reconcile
    of its SKUs), how far back the first read goes, and when a listing counts as drifting."""

    poll_seconds: float = Field(default=2.0, gt=0)
    lookback_minutes: float = Field(default=1440.0, ge=0)
    max_pages_per_poll: int = Field(default=50, ge=1)
    # Open orders read on their own (where a feed reads only a list's ends): each at least this
    # often, at most `rechecks_per_poll` a poll (0: never).
    recheck_minutes: float = Field(default=10.0, gt=0)
    rechecks_per_poll: int = Field(default=5, ge=0)
    drift_threshold: int = Field(default=3, ge=1)
    drift_window_minutes: float = Field(default=60.0, gt=0)
    drift_grace_seconds: float = Field(default=120.0, ge=0)


class HealthSettings(_Section):
    """`[health]`: the daemon's optional HTTP port for /healthz, /readyz and /metrics (off unless
    `port` is set; `host` 0.0.0.0 exposes it beyond this machine, as a container needs)."""

    port: int | None = Field(default=None, ge=0, le=65535)
    host: str = "127.0.0.1"


class BootstrapSettings(_Section):
    """`[bootstrap]`: where a SKU's first pool comes from: `min` over its listings, or one account."""

    rule: str = "min"


class CatalogSettings(_Section):
    """`[catalog]`: the SKUs to keep in step, inline and/or from a file."""

    skus: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list)
    file: Path | None = None


class LoggingSettings(_Section):
    """`[logging]`: level and format (`auto` is readable on a terminal, JSON elsewhere)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Config(_Section):
    """A whole validated configuration."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    accounts: list[AnyAccount] = Field(min_length=1)
    skus: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        names = [a.name for a in self.accounts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"accounts: name {duplicates[0]!r} is used twice; names must be unique")
        rule = self.bootstrap.rule
        if rule != "min" and rule not in names:
            raise ValueError(
                f"bootstrap.rule: {rule!r} is neither 'min' nor the name of an account ({', '.join(names)})"
            )
        return self

    def account(self, name: str) -> AccountSettings:
        """The account called `name`."""
        return next(a for a in self.accounts if a.name == name)

    def secrets(self) -> list[str]:
        """Every credential value in the configuration, for log redaction."""
        return [value for account in self.accounts for value in account.secret_values() if value]


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The file to load: `--config`, else $STOCKSYNC_CONFIG, else ./stocksync.toml."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(path: str | os.PathLike[str] | None = None, *, environ: dict[str, str] | None = None) -> Config:
    """Read, resolve and validate a configuration file; raises ConfigError with the key at fault."""
    source = config_path(path)
    env = dict(os.environ) if environ is None else environ
    try:
        text = read_utf8(source, str(source))
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such configuration file; pass --config PATH or set {ENV_VAR} "
            "(config/example.toml documents every key)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{source}: cannot read: {err.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None

    plain_secrets = _resolve_secrets(raw, env, source.parent)
    raw = _interpolate(raw, env, "")
    _refuse_empty_secrets(raw)
    skus = _catalog_skus(raw.get("catalog"), source.parent)
    try:
        config = Config.model_validate({**raw, "skus": tuple(skus)})
    except ValidationError as err:
        raise ConfigError(f"{source}: {format_validation(err, _account_names(raw))}") from None
    if not config.skus:
        raise ConfigError(f"{source}: catalog: no SKUs; list them in catalog.skus or catalog.file")
    try:
        check_identities(config)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    warnings = _permission_warnings(source, plain_secrets)
    return config.model_copy(update={"warnings": tuple(warnings)})


def check_identities(config: Config) -> None:
    """Refuse codes that would mix up listings: two catalogue SKUs sharing a code on one account, or
    a code the account's platform cannot read; raises ConfigError naming the first few."""
    problems: list[str] = []
    count = 0
    for index, account in enumerate(config.accounts):
        owner: dict[str, str] = {}  # code -> the first catalogue SKU with it, one dict per account
        unreadable = type(account).unreadable_code
        for sku in config.skus:
            code = account.code_for(sku)
            first = owner.setdefault(code, sku)
            if first != sku:
                problem = (
                    f"accounts[{index}] ({account.name}).aliases: SKUs {first!r} and {sku!r} both map to code "
                    f"{code!r} on account {account.name!r}; each listing must belong to one SKU (remove or change "
                    "one alias)"
                )
            elif (reason := unreadable(code)) is not None:
                remedy = (
                    "change its alias under [accounts.aliases]"
                    if sku in account.aliases
                    else "give it an alias the platform can read under [accounts.aliases]"
                )
                problem = (
                    f"accounts[{index}] ({account.name}): SKU {sku!r} (code {code!r}) on account {account.name!r} "
                    f"cannot be read: {reason}; {remedy} or remove it from the catalogue"
                )
            else:
                continue
            count += 1
            if len(problems) < _MAX_PROBLEMS:
                problems.append(problem)
    if problems:
        more = [f"... and {count - len(problems)} more"] if count > len(problems) else []
        raise ConfigError("\n  ".join(problems + more))


def account_key(index: int, account: Any) -> str:
    """How messages name an [[accounts]] table: `accounts[1] (graas-sg)`, the name where it has one."""
    name = account.get("name") if isinstance(account, dict) else None
    return f"accounts[{index}]" + (f" ({name})" if isinstance(name, str) else "")


def _account_names(raw: dict[str, Any]) -> list[str | None]:
    """Each `[[accounts]]` table's name, where it has one (for messages)."""
    accounts = raw.get("accounts")
    if not isinstance(accounts, list):
        return []
    return [a.get("name") if isinstance(a, dict) and isinstance(a.get("name"), str) else None for a in accounts]


def format_validation(err: ValidationError, names: Sequence[str | None] = ()) -> str:
    """Pydantic's errors as `key: what is wrong` lines, with the platform tag removed from paths and
    an account's name after its index (`accounts[1] (graas-sg).app_key`)."""
    lines = []
    for item in err.errors():
        loc = [part for part in item["loc"] if part not in PLATFORMS]
        key = ""
        for position, part in enumerate(loc):
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
            if position == 1 and loc[0] == "accounts" and isinstance(part, int) and part < len(names):
                name = names[part]
                key += f" ({name})" if name else ""
        message = item["msg"]
        if item["type"] == "union_tag_not_found":
            key, message = f"{key}.platform", f"required; one of {', '.join(sorted(PLATFORMS))}"
        elif item["type"] == "union_tag_invalid":
            key += ".platform"
            message = (
                f"{item['input'].get('platform')!r} is not a known platform; use one of {', '.join(sorted(PLATFORMS))}"
            )
        elif item["type"] == "extra_forbidden":
            message = "unknown key (misspelt? config/example.toml lists every key)"
        elif item["type"] == "missing":
            message = "required but missing"
        elif item["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        lines.append(f"{key}: {message}" if key else message)
    return "\n  ".join(lines)


def _resolve_secrets(raw: dict[str, Any], env: dict[str, str], base: Path) -> list[str]:
    """Replace `<secret>_file` keys by the file's contents; return the keys given as plain text."""
    plain: list[str] = []
    accounts = raw.get("accounts")
    if not isinstance(accounts, list):
        return plain
    for index, account in enumerate(accounts):
        spec = PLATFORMS.get(str(account.get("platform"))) if isinstance(account, dict) else None
        if spec is None:
            continue
        for field in spec.settings.secret_fields():
            key = f"{account_key(index, account)}.{field}"
            file_key = f"{field}_file"
            if file_key in account:
                if field in account:
                    raise ConfigError(f"{key}: give either {field} or {file_key}, not both")
                file_path = Path(_interpolate(account.pop(file_key), env, f"{key}_file"))
                try:
                    path = file_path if file_path.is_absolute() else base / file_path
                    account[field] = read_utf8(path, f"{key}_file").strip()
                except OSError as err:
                    raise ConfigError(f"{key}_file: cannot read {file_path}: {err.strerror}") from None
            elif isinstance(account.get(field), str) and not _INTERPOLATION.search(account[field]):
                plain.append(key)
    return plain


def _interpolate(value: Any, env: dict[str, str], key: str) -> Any:
    """Expand `${VAR}` in every string: from $VAR, or else from the file $VAR_FILE names (the
    container convention for secrets); neither set is an error naming the key."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list) and key == "accounts":
        return [_interpolate(v, env, account_key(i, v)) for i, v in enumerate(value)]
    if isinstance(value, list):
        return [_interpolate(v, env, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in env:
            return env[name]
        if f"{name}_FILE" in env:
            try:
                return read_utf8(Path(env[f"{name}_FILE"]), f"{key}: {name}_FILE").strip()
            except OSError as err:
                raise ConfigError(f"{key}: {name}_FILE: cannot read {env[name + '_FILE']}: {err.strerror}") from None
        raise ConfigError(f"{key}: environment variable {name} (or {name}_FILE) is not set")

    return _INTERPOLATION.sub(expand, value)


def _catalog_skus(catalog: Any, base: Path) -> list[str]:
    """Inline SKUs then the file's, in order, without repeats."""
    if not isinstance(catalog, dict):
        return []
    skus = [s for s in catalog.get("skus") or [] if isinstance(s, str)]
    if catalog.get("file"):
        skus += read_catalog_file(base / str(catalog["file"]))
    return list(dict.fromkeys(skus))


def read_catalog_file(path: Path) -> list[str]:
    """SKUs from a CSV with a `sku` column (separated by commas, semicolons, tabs or bars), or one SKU
    per line; `#` starts a comment line. A first line with a separator is a CSV header: without a
    `sku` column the file is refused (its lines would otherwise be taken for SKUs)."""
    try:
        text = read_utf8(path, "catalog.file")
    except OSError as err:
        raise ConfigError(f"catalog.file: cannot read {path}: {err.strerror}") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return []
    # A spreadsheet's CSV may be separated by ";" (European locales) or tabs: the header says which.
    separator = next((sep for sep in (",", ";", "\t", "|") if sep in lines[0]), ",")
    header = [cell.strip().lower() for cell in next(csv.reader([lines[0]], delimiter=separator))]
    if "sku" in header:
        column = header.index("sku")
        rows = csv.reader(lines[1:], delimiter=separator)
        return [row[column].strip() for row in rows if len(row) > column and row[column].strip()]
    if len(header) > 1:
        raise ConfigError(
            f"catalog.file: {path} looks like a CSV (its first line is {lines[0].strip()!r}) but has no `sku` "
            "column: name the column of SKU codes `sku` in the first line, or list one SKU per line"
        )
    return [line.strip() for line in lines]


def read_utf8(path: Path, key: str) -> str:
    """A text file the configuration names: UTF-8, with or without a byte order mark (spreadsheets
    add one). Any other encoding is refused naming the file, the line and the fix; OSError passes."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        how = "in a spreadsheet, save as CSV UTF-8" if path.suffix.lower() in (".csv", ".txt") else "in an editor"
        raise ConfigError(
            f"{key}: {path} is not UTF-8 (line {line} has byte 0x{data[err.start]:02x}): save it as UTF-8 ({how})"
        ) from None


def _refuse_empty_secrets(raw: dict[str, Any]) -> None:
    """An empty credential is a mistake, never a value (`${VAR:-}` in a compose file passes an unset
    variable as ""): refused at start, naming the key."""
    accounts = raw.get("accounts")
    if not isinstance(accounts, list):
        return
    for index, account in enumerate(accounts):
        spec = PLATFORMS.get(str(account.get("platform"))) if isinstance(account, dict) else None
        if spec is None:
            continue
        for field in spec.settings.secret_fields():
            value = account.get(field)
            if isinstance(value, str) and not value.strip():
                raise ConfigError(
                    f"{account_key(index, account)}.{field}: empty; set it (if it comes from ${{VAR}} or a "
                    "file, that variable or file is empty)"
                )


def _permission_warnings(source: Path, plain_secrets: list[str]) -> list[str]:
    if not plain_secrets:
        return []
    mode = source.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [
            f"{source} holds plain credentials ({', '.join(plain_secrets)}) and other users can read it: "
            "use ${ENV_VAR} or <key>_file for them instead (a file the service's user does not own must "
            "stay readable: chmod 600 breaks the container's and the unit's users)"
        ]
    return []

"""Connecting to the ledger, applying migrations, and refusing to run on a missing or old schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import sync.migrations
from sync.errors import ConfigError, LedgerUnavailable, SchemaError


def create_db_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except Exception as err:  # SQLAlchemy raises ArgumentError with no common base worth naming
        raise ConfigError(f"database.url: {url!r} is not a database URL ({err})") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"database.url: {parsed.get_backend_name()!r} is not a ledger stocksync runs on; use sqlite:/// or "
            "postgresql+psycopg://"
        )
    try:
        return create_engine(parsed, pool_pre_ping=True, connect_args=_POSTGRES_SESSION)
    except ImportError as err:
        raise ConfigError(
            f"database.url: the driver for {parsed.drivername} is not installed ({err.name}); "
            "install stocksync[postgres]"
        ) from None


# A reconciler frozen or cut off in the middle of a transaction must not hold its row locks past its
# lease: the server ends a transaction left idle that long (stocksync never waits inside one), a
# lock wait fails rather than hangs, and a peer that vanished without closing is noticed.
_POSTGRES_SESSION = {
    "options": "-c idle_in_transaction_session_timeout=20000 -c lock_timeout=30000",
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (the engine reads them afterwards)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> AlembicConfig:
    """An Alembic configuration that runs the packaged migrations on `engine`."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(sync.migrations.__file__).parent))
    config.attributes["engine"] = engine
    return config


def ledger_location(engine: Engine) -> str:
    """Where the ledger is, for messages: a SQLite file's absolute path, or the URL without its
    password."""
    path = _sqlite_file(engine)
    if path is not None:
        return str(path)
    if engine.url.get_backend_name() == "sqlite":
        return "an in-memory SQLite database"
    return engine.url.render_as_string(hide_password=True)


def _sqlite_file(engine: Engine) -> Path | None:
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).expanduser().resolve()


def check_reachable(engine: Engine, *, creating: bool) -> None:
    """Refuse, before connecting, what connecting would do wrong: a SQLite file in a folder that
    does not exist (ConfigError), or, unless `creating`, a SQLite file that does not exist yet
    (SchemaError: connecting would create an empty one as a side effect of reading)."""
    path = _sqlite_file(engine)
    if path is None:
        return
    if not path.parent.is_dir():
        raise ConfigError(
            f"database.url: the folder {path.parent} does not exist: create it, or point database.url elsewhere"
        )
    if not creating and not path.exists():
        raise SchemaError(
            f"no ledger at {path} (database.url): run `stocksync db upgrade` to create it, "
            "or pass the --config whose ledger you mean"
        )


def unreachable(engine: Engine, err: SQLAlchemyError) -> LedgerUnavailable:
    """The database's own first line, naming the ledger, without SQL or traceback."""
    said = str(getattr(err, "orig", None) or err).strip().splitlines()
    return LedgerUnavailable(
        f"cannot reach the ledger at {ledger_location(engine)}: {said[0] if said else type(err).__name__}"
    )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (LedgerUnavailable when the database cannot be reached)."""
    check_reachable(engine, creating=True)
    try:
        command.upgrade(alembic_config(engine), revision)
    except SQLAlchemyError as err:
        raise unreachable(engine, err) from None


def schema_revisions(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, the code's head revision); LedgerUnavailable when the database
    cannot be reached."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as err:
        raise unreachable(engine, err) from None
    return current, head


def check_schema(engine: Engine) -> None:
    """Raise SchemaError unless the ledger exists and is at the code's migration head
    (LedgerUnavailable when it cannot be reached); never creates one."""
    check_reachable(engine, creating=False)
    current, head = schema_revisions(engine)
    where = ledger_location(engine)
    if current is None:
        raise SchemaError(f"the ledger at {where} has no schema yet: run `stocksync db upgrade`")
    if current != head:
        raise SchemaError(
            f"the ledger at {where} has schema {current}, this stocksync needs {head}: run `stocksync db upgrade`"
        )

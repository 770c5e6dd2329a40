"""The ledger's tables. The schema exists only through Alembic migrations; a test proves these
models and the migrations agree.

Movements are append-only: the pool of a SKU is the sum of its movements. Pushes are an outbox,
written before they are sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The domain values the ledger stores live with the domain (the pure planner imports them from
# there); re-exported for the ledger's users.
from sync.domain import OPEN_PUSH_STATES as OPEN_PUSH_STATES
from sync.domain import MovementKind as MovementKind
from sync.domain import PushState as PushState

# Stable constraint names, so migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store in UTC."""
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use timezone-aware UTC")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    """A configured platform connection and its health."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(32))
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    healthy: Mapped[bool] = mapped_column(default=True)
    # Since when its answers have been bad (None: answering well), and the latest bad one.
    bad_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_bad_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Sku(Base):
    """A seller's product code: the ledger's key."""

    __tablename__ = "skus"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when the SKU left the catalogue: if it comes back, it is adopted afresh, not booked.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Listing(Base):
    """One stock counter on one platform for one SKU."""

    __tablename__ = "listings"
    __table_args__ = (UniqueConstraint("account_id", "sku_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    code: Mapped[str] = mapped_column(String(200))  # the SKU as the platform spells it
    ref: Mapped[str] = mapped_column(String(200))  # the platform's own id for the listing
    expected: Mapped[int] = mapped_column(BigInteger)
    last_observed: Mapped[int | None] = mapped_column(BigInteger)
    # When the platform's number last changed (a quiet listing is not rewritten at every sweep; the
    # account's last_success_at says when it was last read).
    last_observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Under a safety stop: the stop, and the drop it holds back (not booked until decided).
    stop_id: Mapped[int | None] = mapped_column(ForeignKey("safety_stops.id"), index=True)
    held_quantity: Mapped[int | None] = mapped_column(BigInteger)
    # An operator's decision for the next read: "accept" books it, "reject" adopts it unbooked.
    decision: Mapped[str | None] = mapped_column(String(16))


class Cycle(Base):
    """One reconcile cycle: when, why, how it ended and what it did."""

    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str | None] = mapped_column(String(200))  # which reconciler ran it
    shard: Mapped[int | None] = mapped_column(Integer)  # which shard (None: written before shards)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    listings_observed: Mapped[int] = mapped_column(Integer, default=0)
    movements: Mapped[int] = mapped_column(Integer, default=0)
    pushes_planned: Mapped[int] = mapped_column(Integer, default=0)
    pushes_confirmed: Mapped[int] = mapped_column(Integer, default=0)
    pushes_failed: Mapped[int] = mapped_column(Integer, default=0)
    pushes_in_doubt: Mapped[int] = mapped_column(Integer, default=0)
    accounts_failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Movement(Base):
    """An append-only change to a pool, with its source."""

    __tablename__ = "movements"
    __table_args__ = (
        CheckConstraint("kind IN ('bootstrap', 'external', 'adjustment', 'correction', 'settlement')", name="kind"),
        Index("ix_movements_sku_id_id", "sku_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("listings.id"))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    flagged: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Units of |quantity| that order lines explain (see Attribution); the rest is unexplained.
    explained: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Push(Base):
    """A relative change for one listing: the outbox row, written before it is sent."""

    __tablename__ = "pushes"
    __table_args__ = (Index("ix_pushes_listing_id_state", "listing_id", "state"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    delta: Mapped[int] = mapped_column(BigInteger)
    expected_before: Mapped[int] = mapped_column(BigInteger)
    observed: Mapped[int] = mapped_column(BigInteger)
    target: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    answer_quantity: Mapped[int | None] = mapped_column(BigInteger)
    applied_delta: Mapped[int | None] = mapped_column(BigInteger)  # when the platform moved less
    # When the read behind the push began: the start of the window whose orders settle it in doubt.
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An absolute set's fresh read (Ankorstore), recorded before it is sent with the set's real move
    # in applied_delta: a lost answer is judged against what was really set.
    fresh_quantity: Mapped[int | None] = mapped_column(BigInteger)
    # In doubt on a feed platform: a read since (its count, and when it began and ended), kept
    # until the order feed has been read past it and judged it (sync.settling).
    probe_quantity: Mapped[int | None] = mapped_column(BigInteger)
    probe_began_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    probe_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(Text)
    settled_by: Mapped[str | None] = mapped_column(String(16))  # SettledBy: the evidence that decided
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When it was marked sent; for a push in doubt, when it went in doubt (the last moment the
    # write can have left: a late landing and the in-doubt timeout count from there).
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Lease(Base):
    """A named lease: who holds it, until when, and a token that grows at every change of hands
    (so a holder that lost it cannot commit by mistake)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(BigInteger)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerSetting(Base):
    """A setting every reconciler on this ledger must agree on (`shards`), recorded once."""

    __tablename__ = "ledger_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RotatedToken(Base):
    """A credential the platform replaced (OTO answers a token refresh with a new refresh token):
    kept so that a restart uses the current one, for as long as the configured one is still the
    one it replaced (an operator who configures a new token starts again from that)."""

    __tablename__ = "rotated_tokens"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    configured: Mapped[str] = mapped_column(String(64))  # SHA-256 of the configured token
    current: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SafetyStop(Base):
    """An account's listings held back because too many dropped at once with nothing to explain
    it; open until orders explain the drops, the reads recover, or an operator decides."""

    __tablename__ = "safety_stops"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)


class ReadEvent(Base):
    """A read that was not simply believed: a refused answer (account-wide), a bad value, a drop
    held for confirmation and how it ended, a listing stopped, released or decided."""

    __tablename__ = "read_events"
    __table_args__ = (Index("ix_read_events_sku_id_id", "sku_id", "id"), Index("ix_read_events_at", "at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    sku_id: Mapped[int | None] = mapped_column(ForeignKey("skus.id"))  # None: a whole answer
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))  # a ReadProblem, or what became of a held drop
    quantity: Mapped[int | None] = mapped_column(BigInteger)  # the reading concerned
    expected: Mapped[int | None] = mapped_column(BigInteger)  # what the ledger expected then
    reason: Mapped[str] = mapped_column(Text, default="")
    skus: Mapped[str | None] = mapped_column(Text)  # a whole answer's SKUs, as a JSON list


class UrgentSku(Base):
    """A SKU a new order touched, waiting for its shard's reconciler (several replicas only)."""

    __tablename__ = "urgent_skus"

    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderFeed(Base):
    """Where an account's order feed stopped: advanced only in the transaction booking a page."""

    __tablename__ = "order_feeds"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    cursor: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the last poll that read the feed to its end began: every order placed before is booked.
    read_through_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When a poll first read it to its end: orders booked until then are history, taken as shown
    # by the stock reads already (a sale's units are held back for picking only after it).
    caught_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Order(Base):
    """An order as an account's feed reported it, stored once per (account, order)."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("account_id", "external_id"), Index("ix_orders_placed_at", "placed_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(64))  # the platform's word
    state: Mapped[str] = mapped_column(String(16))  # OrderState: what it means for stock
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    handle: Mapped[str] = mapped_column(Text, default="{}")  # JSON: what a cancel call needs
    # When its status was last read on its own (None: only ever by the feed).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The latest its stock can have moved, where the platform says (None: at `placed_at`).
    moved_by: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OrderLine(Base):
    """One line of an order, stored once per (order, line)."""

    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_id"), Index("ix_order_lines_sku_id", "sku_id"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    line_id: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(200))
    sku_id: Mapped[int | None] = mapped_column(ForeignKey("skus.id"))  # None: not in the catalogue
    quantity: Mapped[int] = mapped_column(BigInteger)
    # The item's own OrderState where the platform gives one (Graas, for Lazada): None, the order's.
    state: Mapped[str | None] = mapped_column(String(16))
    # Units of the sale (a drop) and of its cancellation or return (a rise) already linked to movements.
    sale_explained: Mapped[int] = mapped_column(BigInteger, default=0)
    return_explained: Mapped[int] = mapped_column(BigInteger, default=0)
    # When a read began that the sale is known to be in: a settlement's orders proved it (OTO's
    # orders carry no time that bounds when they moved stock; this does, for every later window).
    sale_in_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# What a line means for stock (an OrderState): its own state where the platform gives items one,
# else its order's. For queries joining order_lines to orders.
LINE_STATE = func.coalesce(OrderLine.state, Order.state)


class OrderEvent(Base):
    """A status an order was seen in: its history, one row per change."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Attribution(Base):
    """Units of a movement explained by an order line (signed like the movement)."""

    __tablename__ = "attributions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    movement_id: Mapped[int] = mapped_column(ForeignKey("movements.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    quantity: Mapped[int] = mapped_column(BigInteger)


class Oversell(Base):
    """A pool below zero: open while it lasts; the orders acted on for it hang off it."""

    __tablename__ = "oversells"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    shortfall: Mapped[int] = mapped_column(BigInteger)  # the deepest the pool went below zero
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OrderAction(Base):
    """What the daemon did about an order it could not fill: an alert or a cancel (an outbox row,
    written before the cancel is sent). At most one of each kind per order, ever."""

    __tablename__ = "order_actions"
    __table_args__ = (
        UniqueConstraint("order_id", "kind"),
        CheckConstraint("kind IN ('alert', 'cancel')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    oversell_id: Mapped[int] = mapped_column(ForeignKey("oversells.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))  # ActionState
    units: Mapped[int] = mapped_column(BigInteger)  # of the oversold SKU this order covers
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ActionState(str, Enum):
    """An order action's life: planned -> sent -> done | failed | in_doubt; an alert is done at once."""

    PLANNED = "planned"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"

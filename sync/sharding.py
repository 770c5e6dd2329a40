"""Shards: how several replicas on one PostgreSQL ledger divide the catalogue.

Each SKU belongs to one shard by a stable hash of its code. A shard is reconciled under its own
lease, so two replicas never work on the same SKU at once, and a replica that dies leaves its
shards to the others when their leases run out. With one shard (the default) the lease is the
single `reconcile` lease of a lone daemon.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence


def shard_of(sku: str, shards: int) -> int:
    """The shard a SKU belongs to (stable across processes and versions: CRC-32 of its code)."""
    return zlib.crc32(sku.encode()) % shards


def split(skus: Sequence[str], shards: int) -> list[list[str]]:
    """The catalogue cut into `shards` lists, in catalogue order within each."""
    parts: list[list[str]] = [[] for _ in range(shards)]
    for sku in skus:
        parts[shard_of(sku, shards)].append(sku)
    return parts


def lease_name(shard: int, shards: int) -> str:
    """The lease a shard is reconciled under: `reconcile` alone, `reconcile:K/N` among several."""
    return "reconcile" if shards == 1 else f"reconcile:{shard}/{shards}"


def fair_share(shards: int, replicas: int) -> int:
    """How many shards one replica sweeps per round when `replicas` are alive."""
    return math.ceil(shards / max(1, replicas))


def rotation(holder: str, shards: int) -> list[int]:
    """The order in which a replica tries the shards: each replica starts elsewhere, so that they
    spread over the shards rather than race for the same ones."""
    start = zlib.crc32(holder.encode()) % shards
    return [(start + i) % shards for i in range(shards)]

"""Pure functions between Ankorstore's JSON:API payloads and domain values.

A variant's `stockQuantity` is `availableQuantity + reservedQuantity`; open orders hold the
reservations. stocksync keeps `availableQuantity` in step, and writes `stockQuantity`. A variant
with `inventoryPolicy: continue` takes orders past zero, so there a negative `availableQuantity` is
a sale past zero, believed; elsewhere it is a bad value. An archived variant (`archivedAt` set)
is listed beside the live one that took its SKU: it is ignored.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sync.errors import BadAnswerError, ReadProblem
from sync.platforms.values import is_int, quantity_or_reason

VARIANT_TYPES = ("productVariant", "product-variants")


class AnkorstoreShapeError(BadAnswerError):
    """An Ankorstore answer that does not follow JSON:API or the document's shape."""


@dataclass(frozen=True)
class Variant:
    """The stock of one product variant."""

    id: str
    sku: str
    available: int
    reserved: int
    always_in_stock: bool


class BadValue(str):
    """Why a variant's numbers cannot be believed (a bad read, unlike a variant we do not track)."""


class Archived(str):
    """Why a variant is ignored: it is archived (a live variant may have taken its SKU)."""


def variant(resource: Any) -> Variant | str:
    """A Variant from a resource object, or why it cannot be used (a BadValue when its numbers
    cannot be believed)."""
    if not isinstance(resource, dict) or resource.get("type") not in VARIANT_TYPES:
        return "not a product variant"
    attributes = resource.get("attributes")
    if not isinstance(attributes, dict) or not isinstance(resource.get("id"), str):
        return "variant without id or attributes"
    if attributes.get("archivedAt") is not None:
        return Archived(f"archived at {attributes['archivedAt']}: not tracked")
    # stockQuantity has a documented minimum of 0 and our sets never go below the reservations:
    # a negative available quantity is a bad value, unless the variant takes orders past zero.
    past_zero = attributes.get("inventoryPolicy") == "continue"
    available = quantity_or_reason(attributes.get("availableQuantity"), negative_ok=past_zero)
    reserved = quantity_or_reason(attributes.get("reservedQuantity"))
    if isinstance(available, str) or isinstance(reserved, str):
        return BadValue(
            "; ".join(
                f"{name}: {reason}"
                for name, reason in (("availableQuantity", available), ("reservedQuantity", reserved))
                if isinstance(reason, str)
            )
        )
    return Variant(
        resource["id"], str(attributes.get("sku")), available, reserved, attributes.get("isAlwaysInStock") is True
    )


def page(payload: Any) -> tuple[list[Any], str | None]:
    """A list page's resources, and the cursor of the next page (`page[after]`) when
    `meta.page.hasMore`: `meta.page.to`, or the last resource's id where `to` is missing. The
    documented cursor, not `links.next`, which the document's list examples leave out."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise AnkorstoreShapeError("ankorstore: answer has no `data` array")
    data: list[Any] = payload["data"]
    meta: dict[str, Any] = payload["meta"] if isinstance(payload.get("meta"), dict) else {}
    pages: dict[str, Any] = meta["page"] if isinstance(meta.get("page"), dict) else {}
    if pages.get("hasMore") is not True:
        return data, None
    following = pages.get("to") or last_id(data)
    if not isinstance(following, str) or not following:
        raise AnkorstoreShapeError("ankorstore: a page with more after it names no `meta.page.to`")
    return data, following


def last_id(data: Sequence[Any]) -> str | None:
    """The id of a page's last resource, if it has one."""
    last = data[-1] if data else None
    return last["id"] if isinstance(last, dict) and isinstance(last.get("id"), str) else None


@dataclass
class VariantRead:
    """Variants found by SKU, the SKUs whose variant is not tracked (with why), and those whose
    numbers cannot be believed (with why)."""

    variants: dict[str, Variant]
    skipped: dict[str, str]
    bad: dict[str, str]


def collect(resources: Sequence[Any], wanted: Collection[str], cases: Mapping[str, int] | None = None) -> VariantRead:
    """Variants of the wanted SKUs; always-in-stock ones and those sold in cases (`cases`: variant
    id -> `unitMultiplier`) are reported and left alone, archived ones ignored (reported only where
    no live variant has the SKU). The same variant twice with different numbers refuses the whole
    answer."""
    cases = cases or {}
    found = VariantRead({}, {}, {})
    seen: dict[str, Variant | str] = {}
    archived: dict[str, str] = {}
    for resource in resources:
        parsed = variant(resource)
        sku = resource.get("attributes", {}).get("sku") if isinstance(resource, dict) else None
        if not isinstance(sku, str) or sku not in wanted:
            continue
        vid = resource.get("id") if isinstance(resource, dict) else None
        if isinstance(vid, str):
            if seen.setdefault(vid, parsed) != parsed:
                raise AnkorstoreShapeError(
                    f"ankorstore: variant {vid} ({sku}) listed twice with different numbers",
                    ReadProblem.DUPLICATE,
                )
            if seen[vid] is not parsed:
                continue  # the same variant twice, identically: once is enough
        if isinstance(parsed, Archived):
            archived[sku] = parsed
        elif isinstance(parsed, BadValue):
            found.bad[sku] = parsed
        elif isinstance(parsed, str):
            found.skipped[sku] = parsed
        elif parsed.always_in_stock:
            found.skipped[sku] = "isAlwaysInStock: Ankorstore tracks no stock for it; left alone"
        elif parsed.id in cases:
            found.skipped[sku] = sold_in_cases(cases[parsed.id])
        elif sku in found.variants:
            found.skipped[sku] = "several variants share this SKU"
        else:
            found.variants[sku] = parsed
    for sku in (*found.skipped, *found.bad):
        found.variants.pop(sku, None)
    found.bad = {sku: reason for sku, reason in found.bad.items() if sku not in found.skipped}
    for sku, reason in archived.items():
        if sku not in found.variants and sku not in found.bad:
            found.skipped.setdefault(sku, reason)
    return found


def by_id(resources: Sequence[Any]) -> dict[str, Variant | str]:
    """Variant id -> the variant, or why it cannot be used; the same variant twice with different
    numbers refuses the whole answer."""
    found: dict[str, Variant | str] = {}
    for resource in resources:
        vid = resource.get("id") if isinstance(resource, dict) else None
        if not isinstance(vid, str):
            continue
        parsed = variant(resource)
        if found.setdefault(vid, parsed) != parsed:
            why = f"ankorstore: variant {vid} listed twice with different numbers"
            raise AnkorstoreShapeError(why, ReadProblem.DUPLICATE)
    return found


def set_stock_operations(targets: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """`/api/v1/operations` body setting `stockQuantity` for (variant id, stockQuantity) pairs."""
    return {
        "atomic:operations": [
            {"op": "update", "data": {"type": "product-variants", "id": vid, "attributes": {"stockQuantity": qty}}}
            for vid, qty in targets
        ]
    }


def operation_results(payload: Any) -> dict[str, Variant]:
    """Variant id -> its stock as the operations answer reports it (empty when it says nothing)."""
    results = payload.get("atomic:results") if isinstance(payload, dict) else None
    found: dict[str, Variant] = {}
    for result in results if isinstance(results, list) else []:
        parsed = variant(result.get("data")) if isinstance(result, dict) else "no data"
        if isinstance(parsed, Variant):
            found[parsed.id] = parsed
    return found


def sold_in_cases(units: int) -> str:
    """Why a variant sold in cases is left alone."""
    return (
        f"sold in cases of {units} (unitMultiplier): whether its availableQuantity counts cases or "
        "units is not documented, so no number stocksync pushes could be trusted; left alone"
    )


def cases(resources: Sequence[Any]) -> dict[str, int]:
    """Variant id -> `unitMultiplier`, for the products of a products list sold in cases (more than
    one unit a case); a product without a whole number there is taken as sold by the unit."""
    found: dict[str, int] = {}
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        units = (resource.get("attributes") or {}).get("unitMultiplier")
        if not is_int(units) or units <= 1:
            continue
        data = ((resource.get("relationships") or {}).get("productVariant") or {}).get("data")
        for ref in data if isinstance(data, list) else []:
            if isinstance(ref, dict) and isinstance(ref.get("id"), str):
                found[ref["id"]] = int(units)
    return found

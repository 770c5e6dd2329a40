"""An Ankorstore emulator following `platform-docs/ankorstore.txt` and its OpenAPI file: OAuth2
client credentials (the token endpoint limited to 60 requests an hour), JSON:API media types
(406/415), product variants with available, reserved and total stock read by `filter[sku]` or
`filter[id][]` in cursor pages, absolute stock set per variant (`PATCH .../stock`) or 50 at a time
(`/api/v1/operations`), and rate limits with `X-RateLimit-*` headers. A sale places an order and
reserves stock (available down, reserved up); a shipment releases it (stock and reserved both
down); a rejection (`brand-rejects` through the order transition endpoint) moves the order to
`rejected` until Ankorstore approves it (`cancelled`), and is refused with 409
`ORDER_ACTION_TRANSITION_FAILED` once the order has moved on (see `OrderLife`). Orders are
listed in cursor pages, with `include=orderItems.productVariant`. Where the document is silent
(the lists' sort order, whether `links.next` is filled, whether a rejected batch of operations
applied the rest) the emulator follows its `silences`."""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from sync.emulation.bad_reads import corrupt
from sync.emulation.faults import Fault, FaultPlan
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.rate_limits import RateWindows
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.platforms.ankorstore.emulated_orders import REJECT_TYPES, OrderLife, included_resources, order_resource
from sync.platforms.ankorstore.emulated_stock import JSON_API, READ_SHAPE, Variant, cursor_page, product_resource
from sync.platforms.ankorstore.emulated_stock import errors as _errors
from sync.platforms.values import is_int

TOKEN = "/oauth/token"
VARIANTS = "/api/v1/product-variants"
PRODUCTS = "/api/v1/products"
OPERATIONS = "/api/v1/operations"
ORDERS = "/api/v1/orders"
TRANSITION = "/-actions/transition"
TOKENS_PER_HOUR = 60
# The API's documented limits beyond the minute's (authenticated calls).
PER_HOUR, PER_DAY = 24_000, 288_000


class AnkorstoreEmulator(OrderLife, EmulatedPlatform):
    """One brand's Ankorstore account."""

    auth_paths = frozenset({TOKEN})
    catalogue_paths = frozenset({PRODUCTS})

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        faults: FaultPlan | None = None,
        rate_limit_per_minute: int = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(faults)
        self.client_id = client_id
        self.client_secret = client_secret
        self.limits = RateWindows({60: rate_limit_per_minute, 3600: PER_HOUR, 86400: PER_DAY})
        self.clock = clock
        self.tokens: dict[str, float] = {}
        self.variants: dict[str, Variant] = {}  # by id
        self._by_sku: dict[str, Variant] = {}  # the live variant of each SKU
        self._archived: list[Variant] = []
        self.shipped: dict[str, int] = {}
        self._token_times: list[float] = []
        self.forbidden = False  # every API call answers 403 (the account lost a permission)

    # --- state primitives -------------------------------------------------------------------

    def variant(self, sku: str) -> Variant | None:
        """The variant with this SKU."""
        return self._by_sku.get(sku)

    def quantity(self, code: str) -> int | None:
        """Available quantity (what stocksync keeps in step)."""
        found = self.variant(code)
        return None if found is None or found.always_in_stock else found.available

    def set_quantity(self, code: str, quantity: int) -> None:
        """Set the available quantity by hand (reservations stay)."""
        with self.lock:
            found = self.variant(code)
            if found is None:
                generation = sum(1 for v in self._archived if v.sku == code)
                name = f"variant:{code}" + (f":{generation}" if generation else "")
                found = Variant(str(uuid.uuid5(uuid.NAMESPACE_OID, name)), code, 0)
                self.variants[found.id] = found
                self._by_sku[code] = found
            found.stock = quantity + found.reserved

    def archive(self, code: str) -> None:
        """The brand archives the variant selling `code`: it stays listed (`archivedAt` set), and
        a later `set_quantity` lists a new variant under the same SKU."""
        with self.lock:
            found = self._by_sku.pop(code)
            found.archived = True
            self._archived.append(found)

    def sold_in_cases(self, code: str, units: int) -> None:
        """The product selling `code` goes in cases of `units` (`unitMultiplier`): an order's
        `quantity` counts cases, its `multipliedQuantity` units."""
        with self.lock:
            self._by_sku[code].unit_multiplier = units

    def sells_past_zero(self, code: str) -> bool:
        """`inventoryPolicy: continue`: the variant takes orders even at zero available."""
        found = self.variant(code)
        return found is not None and found.inventory_policy == "continue"

    def codes(self) -> list[str]:
        """Every live variant's SKU."""
        return [v.sku for v in self._by_sku.values() if not v.always_in_stock]

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        with self.lock:
            self.tokens = {token: 0.0 for token in self.tokens}

    # --- HTTP -------------------------------------------------------------------------------

    def changes_stock(self, request: EmuRequest) -> bool:
        """Stock writes: the operations endpoint and the per-variant stock PATCH."""
        return request.method in ("POST", "PATCH") and request.path != TOKEN

    def is_stock_read(self, request: EmuRequest) -> bool:
        """`GET product-variants`, by SKU or by id (the fresh read before a set)."""
        return request.method == "GET" and request.path == VARIANTS

    def corrupt_read(self, response: EmuResponse, fault: Fault, rng: random.Random) -> EmuResponse:
        """A lying variant list: `data[].attributes.availableQuantity` (see `emulated_stock`)."""
        return self.told(corrupt(response, fault, rng, READ_SHAPE))

    def route(self, request: EmuRequest) -> EmuResponse:
        """Dispatch a request that passed fault injection."""
        if request.path == TOKEN and request.method == "POST":
            return self._token(request)
        if not request.path.startswith((VARIANTS, PRODUCTS, OPERATIONS, ORDERS)):
            return _errors(404, "Not Found", f"no route for {request.path}")
        self.approve_rejections()
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, 0.0) <= self.clock():
            return _errors(401, "Unauthorized", "Unauthenticated.")
        if self.forbidden:
            return _errors(403, "Forbidden", "This action is unauthorized.")
        limited = self._rate_limited()
        if limited is not None:
            return limited
        response = self._api(request)
        response.headers.update(self._rate_headers())
        return response

    def _api(self, request: EmuRequest) -> EmuResponse:
        if JSON_API not in request.headers.get("accept", ""):
            return _errors(406, "Not Acceptable", f"Accept must be {JSON_API}")
        if request.method != "GET" and not request.headers.get("content-type", "").startswith(JSON_API):
            return _errors(415, "Unsupported Media Type", f"Content-Type must be {JSON_API}")
        if request.method == "GET" and request.path == VARIANTS:
            return self._list(request)
        if request.method == "GET" and request.path == PRODUCTS:
            return self._products(request)
        if request.method == "POST" and request.path == OPERATIONS:
            return self._operations(request)
        if request.method == "GET" and request.path == ORDERS:
            return self._orders(request)
        if request.method == "GET" and request.path.startswith(ORDERS + "/"):
            return self._order(request.path.removeprefix(ORDERS + "/"))
        if request.method == "POST" and request.path.startswith(ORDERS + "/") and request.path.endswith(TRANSITION):
            return self._transition(request, request.path.removeprefix(ORDERS + "/").removesuffix(TRANSITION))
        parts = request.path.removeprefix(VARIANTS + "/").split("/")
        if request.method == "PATCH" and len(parts) == 2 and parts[1] == "stock":
            return self._patch_stock(request, parts[0])
        return _errors(404, "Not Found", f"no route for {request.method} {request.path}")

    def _token(self, request: EmuRequest) -> EmuResponse:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials" or (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return EmuResponse(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        now = self.clock()
        self._token_times = [t for t in self._token_times if t > now - 3600]
        if len(self._token_times) >= TOKENS_PER_HOUR:  # the documented limit of the token endpoint
            wait = max(1, int(self._token_times[0] + 3600 - now) + 1)
            return EmuResponse(429, {"error": "too_many_requests"}, {"Retry-After": str(wait)})
        self._token_times.append(now)
        token = "eyJ0" + secrets.token_hex(24)
        self.tokens[token] = self.clock() + 3600
        return EmuResponse(200, {"token_type": "Bearer", "expires_in": 3600, "access_token": token})

    @property
    def rate_limit(self) -> int:
        """Calls allowed a minute (the hour's and the day's limits stay as documented)."""
        return self.limits.limits[60]

    @rate_limit.setter
    def rate_limit(self, per_minute: int) -> None:
        self.limits.limits[60] = per_minute

    def _rate_limited(self) -> EmuResponse | None:
        headers = self.limits.take(self.clock())
        if headers is None:
            return None
        return EmuResponse(429, {"errors": [{"status": "429", "title": "Too Many Requests"}]}, headers)

    def _rate_headers(self) -> dict[str, str]:
        return self.limits.headers(self.clock())

    def _list(self, request: EmuRequest) -> EmuResponse:
        query = request.query
        if "filter[sku]" in query:
            skus = {s for value in query["filter[sku]"] for s in value.split(",") if s}
            live = [v for sku in skus if (v := self._by_sku.get(sku)) is not None]
            chosen = sorted(live + [v for v in self._archived if v.sku in skus], key=lambda v: v.id)
        else:
            chosen = sorted(self.variants.values(), key=lambda v: v.id)
        if "filter[id][]" in query:
            ids = set(query["filter[id][]"])
            chosen = [v for v in chosen if v.id in ids]
        return cursor_page(request.query, VARIANTS, [(v.id, v.resource) for v in chosen], self.silences.fills_links)

    def _products(self, request: EmuRequest) -> EmuResponse:
        """The products, each with its variants and `unitMultiplier` (one product per SKU here)."""
        products: dict[str, list[Variant]] = {}
        for variant in sorted(self.variants.values(), key=lambda v: v.id):
            products.setdefault(variant.product_id, []).append(variant)
        chosen = sorted(products.items())
        pages = [(pid, partial(product_resource, vs)) for pid, vs in chosen]
        return cursor_page(request.query, PRODUCTS, pages, self.silences.fills_links)

    def _orders(self, request: EmuRequest) -> EmuResponse:
        query = request.query
        limit_text = (query.get("page[limit]") or ["15"])[0]
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 50:
            return _errors(400, "Bad Request", "page[limit] must be between 1 and 50", "page[limit]")
        limit = int(limit_text)
        chosen = self.book.by_newest(lambda o: o.placed)
        if not self.silences.lists_newest_first:  # the order of the document's only example
            chosen.reverse()
        if "filter[status]" in query:
            chosen = [o for o in chosen if o.status == query["filter[status]"][0]]
        afters = query.get("page[after]")
        after = afters[0] if afters else None
        if after is not None:
            position = next((i for i, o in enumerate(chosen) if o.order_id == after), None)
            if position is None:
                return _errors(400, "Bad Request", f"unknown cursor {after}", "page[after]")
            chosen = chosen[position + 1 :]
        page, more = chosen[:limit], len(chosen) > limit
        include = (query.get("include") or [""])[0].split(",")
        body: dict[str, Any] = {
            "meta": {
                "page": {
                    "from": page[0].order_id if page else None,
                    "to": page[-1].order_id if page else None,
                    "hasMore": more,
                    "perPage": limit,
                }
            },
            "jsonapi": {"version": "1.0"},
            "links": {},
            "data": [order_resource(o) for o in page],
        }
        if more and self.silences.fills_links:
            body["links"]["next"] = (
                f"https://www.ankorstore.com{ORDERS}?page[limit]={limit}&page[after]={page[-1].order_id}"
            )
        if "orderItems.productVariant" in include or "orderItems" in include:
            body["included"] = included_resources(
                page, self.variant, with_variants="orderItems.productVariant" in include
            )
        return EmuResponse(200, body, {"Content-Type": JSON_API})

    def _order(self, order_id: str) -> EmuResponse:
        order = self.book.orders.get(order_id)
        if order is None:
            return _errors(404, "Not Found", f"order {order_id} not found")
        return EmuResponse(
            200, {"data": order_resource(order), "jsonapi": {"version": "1.0"}}, {"Content-Type": JSON_API}
        )

    def _transition(self, request: EmuRequest, order_id: str) -> EmuResponse:
        try:
            data = request.json().get("data")
        except (ValueError, AttributeError):
            return _errors(400, "Bad Request", "malformed JSON")
        order = self.book.orders.get(order_id)
        if order is None:
            return _errors(404, "Not Found", f"order {order_id} not found")
        if not isinstance(data, dict) or data.get("type") != "brand-rejects":
            return _errors(422, "Unprocessable Entity", "only brand-rejects is emulated", "/data/type")
        reason = (data.get("attributes") or {}).get("rejectType")
        if reason not in REJECT_TYPES:
            return _errors(422, "Unprocessable Entity", "rejectType is invalid", "/data/attributes/rejectType")
        if not self.cancel_through_api(order_id):  # the OpenAPI file's answer for this case
            refused = _errors(409, "Conflict", f"Order cannot be transitioned using brand-rejects from {order.status}")
            refused.body["errors"][0]["code"] = "ORDER_ACTION_TRANSITION_FAILED"
            return refused
        return EmuResponse(
            200, {"data": order_resource(order), "jsonapi": {"version": "1.0"}}, {"Content-Type": JSON_API}
        )

    def _patch_stock(self, request: EmuRequest, variant_id: str) -> EmuResponse:
        try:
            data = request.json().get("data")
        except (ValueError, AttributeError):
            return _errors(400, "Bad Request", "malformed JSON")
        problem = self._invalid(data, "/data")
        if problem is not None:
            return problem
        if data["id"] != variant_id:
            return _errors(409, "Conflict", "data.id does not match the URL", "/data/id")
        self._apply(data)
        return EmuResponse(
            200,
            {"data": self.variants[variant_id].resource(), "jsonapi": {"version": "1.0"}},
            {"Content-Type": JSON_API},
        )

    def _operations(self, request: EmuRequest) -> EmuResponse:
        try:
            operations = request.json().get("atomic:operations")
        except (ValueError, AttributeError):
            return _errors(400, "Bad Request", "malformed JSON")
        if not isinstance(operations, list) or not 1 <= len(operations) <= 50:
            return _errors(422, "Unprocessable Entity", "1 to 50 operations", "/atomic:operations")
        problems = [self._invalid_operation(operation, index) for index, operation in enumerate(operations)]
        first = next((problem for problem in problems if problem is not None), None)
        if first is not None:
            # "atomic:operations" names the JSON:API extension, but Ankorstore's pages never say a
            # rejected batch applied none of it: the seed chooses.
            if self.silences.rejected_batch_applies_the_rest:
                for operation, problem in zip(operations, problems, strict=True):
                    if problem is None:
                        self._apply(operation["data"])
            return first
        results = []
        for operation in operations:
            self._apply(operation["data"])
            results.append({"data": self.variants[operation["data"]["id"]].resource("product-variants")})
        return EmuResponse(200, {"atomic:results": results}, {"Content-Type": JSON_API})

    def _invalid_operation(self, operation: Any, index: int) -> EmuResponse | None:
        if not isinstance(operation, dict) or operation.get("op") != "update":
            return _errors(422, "Unprocessable Entity", "op must be update", f"/atomic:operations/{index}/op")
        return self._invalid(operation.get("data"), f"/atomic:operations/{index}/data")

    def _invalid(self, data: Any, pointer: str) -> EmuResponse | None:
        if not isinstance(data, dict) or data.get("type") != "product-variants":
            return _errors(422, "Unprocessable Entity", "type must be product-variants", f"{pointer}/type")
        if data.get("id") not in self.variants:
            return _errors(404, "Not Found", f"product variant {data.get('id')} not found", f"{pointer}/id")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return _errors(422, "Unprocessable Entity", "attributes are required", f"{pointer}/attributes")
        if "stockQuantity" in attributes:
            quantity = attributes["stockQuantity"]
            if not is_int(quantity) or quantity < 0:
                return _errors(
                    422,
                    "Unprocessable Entity",
                    "stockQuantity must be an integer >= 0",
                    f"{pointer}/attributes/stockQuantity",
                )
            if quantity < self.variants[data["id"]].reserved:
                return _errors(
                    422,
                    "Unprocessable Entity",
                    "stockQuantity below the reserved quantity",
                    f"{pointer}/attributes/stockQuantity",
                )
        elif not isinstance(attributes.get("isAlwaysInStock"), bool):
            return _errors(
                422, "Unprocessable Entity", "stockQuantity or isAlwaysInStock is required", f"{pointer}/attributes"
            )
        return None

    def _apply(self, data: dict[str, Any]) -> None:
        variant = self.variants[data["id"]]
        attributes = data["attributes"]
        if "stockQuantity" in attributes:
            before = variant.available
            variant.stock, variant.always_in_stock = attributes["stockQuantity"], False
            self.applied.append((variant.sku, variant.available - before))
        else:
            variant.always_in_stock = attributes["isAlwaysInStock"]

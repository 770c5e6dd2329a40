"""Where the platform documents leave a choice open, the reading an emulator follows.

An emulator is never more lenient than its document: where the document is silent, each plausible
reading is one the daemon must survive. A seed (or a test) picks one reading per silence, so a
sweep of seeds, or a test parametrised over them, runs the daemon under each.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields


@dataclass
class Silences:
    """One reading of every silence the emulators meet."""

    # Whether a batch rejected for one bad item applied the others (Oakra's 400, Ankorstore's 422).
    rejected_batch_applies_the_rest: bool = False
    # Whether an order list runs newest first (Ankorstore's and OTO's only examples run oldest first).
    lists_newest_first: bool = True
    # Whether OTO's order list is sorted by last change (`modifiedDate`) rather than `orderDate`.
    sorted_by_change: bool = True
    # Whether Ankorstore fills `links.next` on a list with more pages (its examples leave it out).
    fills_links: bool = True
    # Whether Graas orders reach Graas after the marketplace created them (`timeOrderCreated` before
    # `timeCreated`, minutes apart in the document's example) or at once.
    orders_reach_late: bool = True
    # Whether OTO answers a token refresh with a new refresh token, the old one no longer valid.
    rotates_refresh_token: bool = False
    # Whether Ankorstore gives a rejected order's units back at the rejection, or only once it
    # approves the rejection (`cancelled`); its document says only that it must approve.
    released_at_rejection: bool = True
    # Whether a stock read shows a sale at the order, or only once the order is picked (OTO's
    # `quantityOnHand` and Graas's `quantity` do not say; Ankorstore's `availableQuantity` does).
    reflects_sale_at_order: bool = True

    @classmethod
    def drawn(cls, seed: object) -> Silences:
        """A reading of every silence, drawn independently from `seed`."""
        return cls(**{f.name: random.Random(f"{f.name}-{seed}").random() < 0.5 for f in fields(cls)})

    def describe(self) -> str:
        """The readings in one line, for a failing seed's report."""
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))

"""An httpx transport that carries requests to an emulator in process, with the world's faults
and external events at every boundary, and a record of every change that reached the platform.

A bad read (BAD_READ) meets stock reads only: the emulator answers, then the answer lies in one of
the six ways of `sync.emulation.bad_reads`, chosen by the world's randomness (the platform's state
is untouched). Drawn for any other request, it gives way to one of the other faults."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from enum import Enum

import httpx

from sync.emulation.faults import BAD_READS
from sync.emulation.platform import EmulatedPlatform
from sync.emulation.wire import EmuRequest, EmuResponse
from sync.settling import LATE_LANDING
from sync.simulation.world import World

SECOND = timedelta(seconds=1)


class SimFault(str, Enum):
    """Faults at the I/O boundary, each with what it does to the request."""

    LOST_REQUEST = "lost_request"  # never arrives; the client times out
    LOST_RESPONSE = "lost_response"  # applied; the answer never comes back
    RATE_LIMIT = "rate_limit"  # refused with 429 and Retry-After
    SERVER_ERROR = "server_error"  # refused with 500
    SERVER_ERROR_AFTER = "server_error_after"  # applied, then 502
    SLOW = "slow"  # answered late: within the timeout, or past it (then the client times out)
    LANDS_LATE = "lands_late"  # a write queued: the client times out, and it is applied later
    BAD_READ = "bad_read"  # a stock read answered, then the answer lies (empty, zeros, garbage...)


class SimTransport(httpx.AsyncBaseTransport):
    """One account's connection to its emulator inside the simulated world."""

    def __init__(self, world: World, account: str, fault_rate: float, timeout: float) -> None:
        self.world = world
        self.account = account
        self.platform: EmulatedPlatform = world.platforms[account]
        self.fault_rate = fault_rate
        self.timeout = timeout
        self.faults: Counter[str] = Counter()
        self.bad_reads: Counter[str] = Counter()  # the kinds of lie told
        self.bad_reads_on = True  # whether BAD_READ is among the faults drawn
        # When the current cycle started (the simulation sets it), and per SKU the start of the
        # cycle whose write last changed the listing: the read behind that write came after it.
        self.cycle_started: datetime = world.clock.now
        self.changed_in_cycle: dict[str, datetime] = {}
        # When a stock read told a lie about a code (believable or not).
        self.lied_at: dict[str, list[datetime]] = {}
        # For absolute-set platforms: when each variant was read fresh, and the windows from that
        # read to its set, as (sku, start, end). Only there can a set overwrite an outside change.
        self._read_at: dict[str, datetime] = {}
        self.set_windows: list[tuple[str, datetime, datetime]] = []
        # Writes queued behind a timeout (LANDS_LATE), with when they land: within LATE_LANDING of
        # being sent, the bound the engine assumes.
        self._queued: list[tuple[datetime, EmuRequest, dict[str, datetime], datetime]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request, or fail it the way a network and a platform fail."""
        self.world.boundary()
        self.land_queued()
        emu = EmuRequest.build(
            request.method, request.url.raw_path.decode("ascii"), dict(request.headers.items()), request.read()
        )
        self._note_fresh_read(emu)
        fault = self._draw(emu)
        if fault is SimFault.LANDS_LATE and self.platform.changes_stock(emu):
            sent = self.world.clock.now
            self.world.clock.advance(self.timeout)
            lands = (
                sent + (self.timeout + self.world.rng.uniform(0, LATE_LANDING.total_seconds() - self.timeout)) * SECOND
            )
            self._queued.append((lands, emu, dict(self._read_at), self.cycle_started))
            raise httpx.ReadTimeout("answer too slow (the write is queued)", request=request)
        if fault in (SimFault.LOST_REQUEST, SimFault.LANDS_LATE):
            self.world.clock.advance(self.timeout)
            raise httpx.ReadTimeout("request lost", request=request)
        if fault is SimFault.RATE_LIMIT:
            return httpx.Response(429, json={"message": "Too Many Requests"}, headers={"Retry-After": "2"})
        if fault is SimFault.SERVER_ERROR:
            return httpx.Response(500, json={"message": "Internal Server Error"})
        answer = self._apply(emu)
        if fault is SimFault.BAD_READ and answer.status < 300:
            kind = self.world.rng.choice(BAD_READS)
            self.bad_reads[kind.value] += 1
            lies = len(self.platform.lies)
            answer = self.platform.corrupt_read(answer, kind, self.world.rng)
            for lie in self.platform.lies[lies:]:
                for code in lie.told:
                    self.lied_at.setdefault(code, []).append(self.world.clock.now)
        self.world.boundary()  # something may happen between the change and its answer
        if fault is SimFault.LOST_RESPONSE:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if fault is SimFault.SERVER_ERROR_AFTER:
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        if fault is SimFault.SLOW:
            delay = self.world.rng.uniform(1.0, 2 * self.timeout)
            self.world.clock.advance(min(delay, self.timeout))
            if delay > self.timeout:
                raise httpx.ReadTimeout("answer too slow", request=request)
        payload, content_type = answer.encoded()
        return httpx.Response(answer.status, content=payload, headers={"Content-Type": content_type, **answer.headers})

    def land_queued(self) -> None:
        """Apply the queued writes whose time has come."""
        now = self.world.clock.now
        due = [item for item in self._queued if item[0] <= now]
        self._queued = [item for item in self._queued if item[0] > now]
        for _, emu, read_at, cycle_started in due:
            self._apply(emu, read_at, cycle_started)

    def _apply(
        self, emu: EmuRequest, read_at: dict[str, datetime] | None = None, cycle_started: datetime | None = None
    ) -> EmuResponse:
        """Hand a request to the emulator; a change it applies dates from the cycle it was sent in
        (whose read it was computed from)."""
        applied_before = len(self.platform.applied)
        answer = self.platform.handle(emu)
        for code, _ in self.platform.applied[applied_before:]:
            self.changed_in_cycle[code] = cycle_started or self.cycle_started
        self._note_set(emu, read_at)
        return answer

    def _note_fresh_read(self, emu: EmuRequest) -> None:
        if emu.method == "GET":
            for variant_id in emu.query.get("filter[id][]", []):
                self._read_at[variant_id] = self.world.clock.now

    def _note_set(self, emu: EmuRequest, read_at: dict[str, datetime] | None) -> None:
        """An absolute set's window, from the fresh read it came from (as it was when the set was
        sent, for one that landed late) to now."""
        if emu.method != "POST" or "operations" not in emu.path:
            return
        reads = self._read_at if read_at is None else read_at
        try:
            operations = emu.json()["atomic:operations"]
        except (ValueError, KeyError, TypeError):
            return
        variants = getattr(self.platform, "variants", {})
        for operation in operations:
            variant_id = operation.get("data", {}).get("id")
            start = reads.pop(variant_id, None)
            if start is not None and variant_id in variants:
                self.set_windows.append((variants[variant_id].sku, start, self.world.clock.now))

    def _draw(self, emu: EmuRequest) -> SimFault | None:
        # Token calls are left alone: where OTO rotates its refresh token, a lost answer to a
        # refresh locks the account out until an operator configures a new one (a fatal error,
        # tests/test_oto.py), which ends the seed's story for that account.
        if self.fault_rate <= 0 or emu.path in self.platform.auth_paths or self.world.rng.random() >= self.fault_rate:
            return None
        kinds = list(SimFault) if self.bad_reads_on else [f for f in SimFault if f is not SimFault.BAD_READ]
        fault = self.world.rng.choice(kinds)
        if fault is SimFault.BAD_READ and not self.platform.is_stock_read(emu):
            fault = self.world.rng.choice([f for f in SimFault if f is not SimFault.BAD_READ])
        self.faults[fault.value] += 1
        return fault

"""The one place where httpx exceptions and HTTP statuses become `sync.errors` values.

Every platform client sends through `PlatformHTTP`, which adds the account's auth headers, bounds
concurrency, retries what is safe to retry and classifies everything else:

- a read that fails for any transport reason or a 5xx is retriable;
- a write refused before it was sent (connection refused, 429) is retriable;
- a write whose answer was lost (timeout after sending, reset, 5xx) is in doubt and never retried;
- 401 is an auth failure (a token is renewed once); 403 is a refusal no new token changes, never
  retried; any other 4xx is fatal (the request itself is wrong).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx
import structlog

from sync.errors import (
    AuthError,
    BadAnswerError,
    ConflictError,
    FatalError,
    ForbiddenError,
    InDoubtError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RetriableError,
    SyncError,
)
from sync.fencing import FencedOff, before_write
from sync.judge import TrustRules
from sync.metrics import METRICS
from sync.platforms.account import AccountSettings
from sync.platforms.base import Adapter, CancelResult, Outcome
from sync.platforms.pacing import Pacer, parse_retry_after

log = structlog.get_logger(__name__)

S = TypeVar("S", bound=AccountSettings)

Sleep = Callable[[float], Awaitable[None]]

# httpx errors that prove the request never reached the server: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
MAX_RETRY_AFTER = 60.0


class TokenAuth(Protocol):
    """Short-lived bearer tokens: fetched on demand, renewed early, dropped after a 401."""

    async def headers(self, http: PlatformHTTP) -> dict[str, str]:
        """The auth headers for the next call, fetching a token through `http` when needed."""
        ...  # pragma: no cover

    def invalidate(self, refused: Mapping[str, str]) -> None:
        """Forget the token that these auth headers carried, if it is still the current one (the
        platform rejected it)."""
        ...  # pragma: no cover


class TokenKeeper(Protocol):
    """Where a credential the platform replaced is kept across restarts (the ledger)."""

    def load(self, account: str, configured: str) -> str | None:
        """The credential that replaced `configured` for `account`, if one did."""
        ...  # pragma: no cover

    def save(self, account: str, configured: str, current: str) -> None:
        """Keep `current` as the replacement of `configured` for `account`."""
        ...  # pragma: no cover


class PlatformHTTP:
    """An account's HTTP session: base URL, headers, timeout, concurrency and retry policy."""

    def __init__(
        self,
        *,
        platform: str,
        account: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        concurrency: int,
        max_attempts: int = 4,
        backoff: float = 0.5,
        secrets: Sequence[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        rate_windows: Mapping[int, float] | None = None,
    ) -> None:
        self.platform = platform
        self.auth: TokenAuth | None = None
        self._pacer = Pacer(clock, lambda seconds, paced: self._wait(seconds, paced=paced), rate_windows)
        self._rng = rng or random.Random()
        self._secrets = [s for s in secrets if s]
        self.account = account
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=dict(headers),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        self._limit = asyncio.Semaphore(concurrency)
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._sleep = sleep

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    @property
    def running_low(self) -> bool:
        """Whether the published rate limit runs low (calls spaced or paused)."""
        return self._pacer.running_low

    async def request(
        self,
        method: str,
        path: str,
        *,
        write: bool,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> httpx.Response:
        """Send one call, retrying what is safe to retry; return a 2xx response or raise a SyncError.
        `anonymous` leaves the token auth out (the call that fetches the token).

        With token auth, a 401 renews the token once and sends again (a rejected call applied nothing)."""
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            credentials: dict[str, str] = {}  # the token the call carried, once it leaves
            try:
                return await self._send_once(
                    method,
                    path,
                    write=write,
                    params=params,
                    json=json,
                    data=data,
                    headers=dict(headers or {}),
                    credentials=None if anonymous or self.auth is None else credentials,
                )
            except _TokenFailed as failed:
                raise failed.error from None
            except AuthError:
                if not credentials or renewed:
                    raise
                renewed = True
                # Only the token this call carried: calls running beside it that failed with the
                # same token ask for one new token between them, not one each.
                self.auth.invalidate(credentials)  # type: ignore[union-attr]
            except RetriableError as err:
                if (
                    attempt >= self._max_attempts
                    or isinstance(err, FencedOff)
                    or (write and isinstance(err, ConflictError))
                ):
                    raise
                wait = self._wait_for(err, attempt)
                if isinstance(err, RateLimitedError):
                    self._count_rate_limit_wait(wait)
                log.info(
                    "http.retry",
                    platform=self.platform,
                    account=self.account,
                    path=path,
                    attempt=attempt,
                    wait=round(wait, 3),
                    reason=err.message,
                )
                await self._sleep(wait)

    def _wait_for(self, err: RetriableError, attempt: int) -> float:
        if isinstance(err, RateLimitedError) and err.retry_after is not None:
            return min(err.retry_after, MAX_RETRY_AFTER)
        # Exponential backoff with full jitter.
        return self._rng.uniform(0, self._backoff * (2 ** (attempt - 1)))

    async def _send_once(
        self,
        method: str,
        path: str,
        *,
        write: bool,
        params: Any,
        json: Any,
        data: Any,
        headers: dict[str, str],
        credentials: dict[str, str] | None,
    ) -> httpx.Response:
        where = f"{self.platform} {self.account}: {method} {path}"
        # The call that fetches a token runs outside the concurrency limit: it is asked for by a
        # call holding a place in it, which would otherwise wait for itself.
        async with self._limit if credentials is not None or self.auth is None else contextlib.nullcontext():
            await self._pacer.before_call()
            if credentials is not None and self.auth is not None:
                # The token after the wait for a slot, which a low limit may make long: fresh when
                # the call leaves (`credentials` tells the caller which token it carried).
                try:
                    credentials.update(await self.auth.headers(self))
                except RetriableError as err:
                    raise _TokenFailed(err) from err  # retried already, as the token's own call
                headers.update(credentials)
            if write:
                # Last thing before it leaves (after any wait for a slot or a rate-limit pause): a
                # reconciler that may have lost its lease sends nothing more.
                before_write()
            self._pacer.in_flight += 1
            try:
                response = await self._client.request(
                    method, path, params=params, json=json, data=data, headers=headers
                )
            except _NOT_SENT as err:
                self._count_call("unreachable")
                raise RetriableError(f"{where}: platform unreachable ({type(err).__name__})") from err
            except httpx.HTTPError as err:
                # Sent, but the answer never came back whole.
                self._count_call("lost")
                message = f"{where}: answer lost ({type(err).__name__})"
                if write:
                    raise InDoubtError(message) from err
                raise RetriableError(message) from err
            finally:
                self._pacer.in_flight -= 1
        self._count_call(str(response.status_code))
        self._pacer.note(response)
        raise_for_status(response, where, write=write, scrub=self.scrub)
        return response

    def _count_call(self, status: str) -> None:
        METRICS.api_calls.labels(self.platform, self.account, status).inc()

    def _count_rate_limit_wait(self, seconds: float) -> None:
        METRICS.rate_limit_waits.labels(self.platform, self.account).inc()
        METRICS.rate_limit_wait_seconds.labels(self.platform, self.account).inc(seconds)

    async def _wait(self, seconds: float, *, paced: bool) -> None:
        if not paced:  # a pause until the limit resets is worth a line; pacing is not
            log.info("http.rate_limit_wait", platform=self.platform, account=self.account, wait=round(seconds, 3))
        self._count_rate_limit_wait(min(seconds, MAX_RETRY_AFTER))
        await self._sleep(min(seconds, MAX_RETRY_AFTER))

    def scrub(self, text: str) -> str:
        """`text` without this account's credentials (a platform may echo them in an error)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class _TokenFailed(Exception):
    """A token that could not be had, its own call retried already: not retried again by the call
    that needed it (each would ask for tokens over and over, and a token endpoint is limited)."""

    def __init__(self, error: RetriableError) -> None:
        super().__init__(error.message)
        self.error = error


def raise_for_status(response: httpx.Response, where: str, *, write: bool, scrub: Callable[[str], str] = str) -> None:
    """Translate a non-2xx status into the error that says how to act on it."""
    status = response.status_code
    if status < 300:
        return
    snippet = scrub(response.text[:200].replace("\n", " "))
    message = f"{where}: HTTP {status} {snippet}".rstrip()
    if status == 429:
        raise RateLimitedError(message, retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if status == 401:
        raise AuthError(f"{where}: HTTP 401: credentials rejected; check the account's keys")
    if status == 403:
        raise ForbiddenError(f"{where}: HTTP 403: the platform refuses this account the call; check its permissions")
    if status >= 500:
        if write:
            raise InDoubtError(message)
        raise RetriableError(message)
    if status in (400, 422):
        raise RejectedError(message)
    if status == 409:
        raise ConflictError(message)
    if status == 404:
        raise NotFoundError(message)
    raise FatalError(message)


def json_body(response: httpx.Response, where: str) -> Any:
    """The response's JSON, or a BadAnswerError naming the call when it does not parse (a
    truncated or non-JSON body: nothing in it is believed)."""
    try:
        return response.json()
    except ValueError as err:
        raise BadAnswerError(f"{where}: answer is not JSON ({len(response.content)} bytes)") from err


async def cancel_outcome(call: Callable[[], Awaitable[str | None]]) -> CancelResult:
    """Run a cancel call that returns None when the platform confirmed it, or the platform's reason
    for refusing it; translate what it raises into the outcome the engine records."""
    try:
        refusal = await call()
    except InDoubtError as err:
        return CancelResult(Outcome.IN_DOUBT, err.message)
    except RetriableError as err:
        # Raised for a write only when nothing was sent (refused, rate-limited): safe to resend.
        return CancelResult(Outcome.FAILED, err.message, retry=True)
    except SyncError as err:
        return CancelResult(Outcome.FAILED, err.message)
    if refusal is not None:
        return CancelResult(Outcome.FAILED, refusal)
    return CancelResult(Outcome.CONFIRMED)


class HttpAdapter(Adapter, Generic[S]):
    """An adapter that talks to its platform through one PlatformHTTP session; a platform says
    only which headers authenticate it."""

    # Per published limit (`X-RateLimit-Limit`), the seconds it counts over, where documented.
    rate_windows: ClassVar[Mapping[int, float]] = {}

    def __init__(
        self,
        settings: S,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        trust: TrustRules | None = None,
        clock: Callable[[], float] = time.time,
        keeper: TokenKeeper | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        # How a number read inside a write (Ankorstore's fresh read before a set) is judged.
        self.trust = trust or TrustRules()
        self.http = PlatformHTTP(
            platform=self.platform,
            account=settings.name,
            base_url=settings.base_url,
            headers=self.auth_headers(settings),
            timeout=settings.timeout_seconds,
            concurrency=settings.concurrency,
            secrets=settings.secret_values(),
            transport=transport,
            sleep=sleep or asyncio.sleep,
            rng=rng,
            clock=clock,
            rate_windows=self.rate_windows,
        )
        self.http.auth = self.token_auth(settings, keeper)

    @property
    def running_low(self) -> bool:
        """Whether the platform's published limit runs low (`Pacer.running_low`)."""
        return self.http.running_low

    @staticmethod
    @abc.abstractmethod
    def auth_headers(settings: S) -> dict[str, str]:
        """The headers every request of this account carries (credentials included)."""

    @staticmethod
    def token_auth(settings: S, keeper: TokenKeeper | None) -> TokenAuth | None:
        """Short-lived bearer tokens, for platforms that use them (a credential the platform
        rotates is kept by `keeper`); None means static headers only."""
        return None

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self.http.aclose()

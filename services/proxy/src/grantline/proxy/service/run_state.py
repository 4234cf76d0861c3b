"""What the proxy knows about runs between calls: resolved tokens (briefly), finished runs, revoked
connections, and the streams open for each.

Why caching a token here is safe: an entry is keyed by the exact grant and provider the vault
answered for, so it never serves another run, user or provider; it lives for seconds (at most
``token_cache_seconds`` and never past the token's expiry minus a margin) and only in this process's
memory (never logged, never written). `runs.connection_revoked.<tenant>` and
`runs.finished.<tenant>` drop the entries of that connection or run at once and mark the run so its
next call is refused without asking the vault; after a reconnection to NATS (events may have been
missed) everything is dropped and the vault is asked again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import SecretStr

RunKey = tuple[str, str]  # tenant, run


@dataclass(frozen=True, slots=True)
class ResolvedToken:
    """A token the vault answered for one grant and provider, and what the call needs with it."""

    token: SecretStr
    connection_id: str
    settings: dict[str, str]
    run: RunKey
    fresh_until: float  # monotonic


@dataclass(eq=False)
class OpenStream:
    """A response being streamed to a tool; ``close`` ends it (revocation, finished run)."""

    run: RunKey
    connection_id: str
    on_close: Callable[[str], None]
    closed_because: str | None = field(default=None)

    def close(self, reason: str) -> None:
        """End the stream at the next chunk boundary (or now, if it waits for the provider)."""
        if self.closed_because is None:
            self.closed_because = reason
            self.on_close(reason)


class RunState:
    """Token cache, finished runs, revoked (run, connection) pairs and open streams, per replica."""

    def __init__(
        self, *, cache_seconds: float, expiry_margin_seconds: float, cache_size: int, remember_seconds: float
    ) -> None:
        self._cache_seconds = cache_seconds
        self._margin = expiry_margin_seconds
        self._cache_size = cache_size
        self._remember = remember_seconds
        self._tokens: OrderedDict[tuple[str, str], ResolvedToken] = OrderedDict()
        self._finished: OrderedDict[RunKey, float] = OrderedDict()
        self._revoked: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._streams: set[OpenStream] = set()

    # -- tokens ------------------------------------------------------------------------------------

    def cached(self, grant: str, provider: str) -> ResolvedToken | None:
        """The token resolved for this grant and provider, while fresh."""
        entry = self._tokens.get((grant, provider))
        if entry is None:
            return None
        if time.monotonic() >= entry.fresh_until:
            del self._tokens[(grant, provider)]
            return None
        return entry

    def remember(
        self,
        grant: str,
        provider: str,
        *,
        token: str,
        connection_id: str,
        settings: dict[str, str],
        run: RunKey,
        expires_in: float | None,
    ) -> ResolvedToken:
        """Keep a resolved token for the cache's short lifetime; returns the entry either way."""
        lifetime = self._cache_seconds
        if expires_in is not None:
            lifetime = min(lifetime, expires_in - self._margin)
        entry = ResolvedToken(
            SecretStr(token), connection_id, settings, run, time.monotonic() + max(lifetime, 0)
        )
        if lifetime > 0:
            self._tokens[(grant, provider)] = entry
            if len(self._tokens) > self._cache_size:
                self._tokens.popitem(last=False)
        return entry

    def forget_token(self, grant: str, provider: str) -> None:
        """Drop one entry (the provider refused the token)."""
        self._tokens.pop((grant, provider), None)

    def forget_all_tokens(self) -> None:
        """Drop every cached token (events may have been missed)."""
        self._tokens.clear()

    # -- runs and revocations ----------------------------------------------------------------------

    def is_finished(self, run: RunKey) -> bool:
        """Whether ``runs.finished`` was seen for the run."""
        return run in self._finished

    def is_revoked(self, run: RunKey, connection_id: str) -> bool:
        """Whether the connection was revoked while the run used it."""
        return (*run, connection_id) in self._revoked

    def run_finished(self, run: RunKey) -> int:
        """Remember the run as finished, drop its tokens, close its streams; returns streams closed."""
        self._note(self._finished, run)
        self._drop_tokens(lambda entry: entry.run == run)
        return self._close(lambda stream: stream.run == run, "run_finished")

    def connection_revoked(self, run: RunKey, connection_id: str) -> int:
        """Refuse the connection to the run from now on, drop its tokens, close its streams."""
        self._note(self._revoked, (*run, connection_id))
        self._drop_tokens(lambda entry: entry.connection_id == connection_id)
        return self._close(lambda stream: stream.connection_id == connection_id, "connection_revoked")

    def _note(self, book: OrderedDict, key: tuple[str, ...]) -> None:  # type: ignore[type-arg]
        now = time.monotonic()
        book[key] = now
        book.move_to_end(key)
        while book:
            oldest_key, at = next(iter(book.items()))
            if now - at <= self._remember and len(book) <= 1_000_000:
                break
            del book[oldest_key]

    def _drop_tokens(self, matches: Callable[[ResolvedToken], bool]) -> None:
        for key in [key for key, entry in self._tokens.items() if matches(entry)]:
            del self._tokens[key]

    # -- streams -----------------------------------------------------------------------------------

    def opened(self, stream: OpenStream) -> None:
        """Track a stream until ``ended``."""
        self._streams.add(stream)

    def ended(self, stream: OpenStream) -> None:
        """Stop tracking a stream."""
        self._streams.discard(stream)

    @property
    def open_streams(self) -> int:
        """Streams being served now."""
        return len(self._streams)

    def _close(self, matches: Callable[[OpenStream], bool], reason: str) -> int:
        closing = [stream for stream in self._streams if matches(stream)]
        for stream in closing:
            stream.close(reason)
        return len(closing)

"""The one HTTP client for requests to URLs that tenants give (webhooks, chat channels).

A multi-tenant server must not be an SSRF proxy: a tenant's URL may name the cloud
metadata endpoint, the database next door or the server itself. Every request therefore
goes to a public address only, unless the operator lists the non-public networks it may
reach (`TENANTGRAPH_OUTBOUND_ALLOWED_NETWORKS`).

Why a network backend: checking a URL's host and then letting the HTTP stack resolve it
again leaves a DNS-rebinding gap (the name answers a public address to the check and a
private one to the connect). httpcore resolves names only inside its network backend's
`connect_tcp`, so `_VettingBackend` does the resolution itself, refuses the connection if
any address is not allowed, and connects to the vetted address. TLS is started by
httpcore afterwards with the URL's hostname as `server_hostname`, so certificates are
still verified against the name, not the IP. httpx has no parameter for a network
backend: `_VettingTransport` builds the httpcore pool httpx keeps in `_pool` (its layout
since httpx 0.18; tests/test_outbound.py fails if it changes). Proxies from the
environment are not used (they would connect on our behalf, unvetted), nor redirects
(a receiver answers where it is).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

__all__ = [
    "MAX_URL_LENGTH",
    "AddressPolicy",
    "BlockedDestination",
    "IPNetwork",
    "OutboundClient",
]

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 4096  # langgraph-api's limit for a webhook URL
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# IPv6 forms that carry an IPv4 address a gateway forwards to (NAT64's well-known prefix).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SCHEMES = ("http", "https")


class BlockedDestination(ValueError):
    """A URL the client refuses to reach: its scheme, its form, or an address of its host."""


class AddressPolicy:
    """Which addresses outgoing requests may reach: public unicast ones, and any address in
    the operator's `allowed` networks."""

    def __init__(self, allowed: Sequence[IPNetwork] = ()) -> None:
        self.allowed = tuple(allowed)

    def refusal(self, address: str) -> str | None:
        """Why `address` may not be reached, or None when it may."""
        addr = ipaddress.ip_address(address)
        if any(addr in net for net in self.allowed):
            return None
        if isinstance(addr, ipaddress.IPv6Address):
            embedded = addr.ipv4_mapped or addr.sixtofour
            if embedded is None and addr in _NAT64:
                embedded = ipaddress.IPv4Address(addr.packed[-4:])
            if embedded is not None:
                return self.refusal(str(embedded))
        for label, hit in (
            ("unspecified", addr.is_unspecified),
            ("loopback", addr.is_loopback),
            ("link-local", addr.is_link_local),
            ("multicast", addr.is_multicast),
            ("private", addr.is_private),
        ):
            if hit:
                return f"{label} address {addr}"
        return None if addr.is_global else f"reserved address {addr}"

    def check(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses, once every one is allowed (a name that also answers a private
        address is refused whole: which one a client would use is not ours to guess)."""
        vetted = list(dict.fromkeys(addresses))
        if not vetted:
            raise BlockedDestination(f"{host} has no address")
        for address in vetted:
            reason = self.refusal(address)
            if reason is not None:
                raise BlockedDestination(f"{host} resolves to a {reason}")
        return vetted


async def _resolve(host: str, port: int, seconds: float | None) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), seconds
        )
    except (OSError, TimeoutError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return [str(info[4][0]) for info in infos]


class _VettingBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host, vets every address, connects to a vetted one (see the module)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self.policy.check(host, await _resolve(host, port, timeout))
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _VettingTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: AddressPolicy, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_VettingBackend(policy),
        )


def _retry_after(response: httpx.Response) -> float | None:
    """The response's Retry-After in seconds (delta or HTTP date), if it has one."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class OutboundClient:
    """POSTs to tenants' URLs: only to allowed addresses (see the module), with a timeout
    per attempt and `attempts` tries on connection errors, timeouts, 5xx and 429 (backoff
    doubling from `backoff` seconds with jitter; a Retry-After is honoured up to
    `max_delay`). Owned by the process's resources and closed with them."""

    def __init__(
        self,
        allowed_networks: Sequence[IPNetwork] = (),
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
        max_delay: float = 30.0,
        user_agent: str = "tenantgraph",
    ) -> None:
        self.policy = AddressPolicy(allowed_networks)
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_delay = max_delay
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._client = httpx.AsyncClient(
            transport=_VettingTransport(self.policy, limits),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": user_agent},
        )

    @staticmethod
    def parse(url: str) -> httpx.URL:
        """The URL if its form may be requested: http(s), a host, not too long."""
        if len(url) > MAX_URL_LENGTH:
            raise BlockedDestination("URL too long")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise BlockedDestination(f"invalid URL: {exc}") from None
        if parsed.scheme not in _SCHEMES:
            raise BlockedDestination(f"scheme '{parsed.scheme}' not allowed")
        if not parsed.host:
            raise BlockedDestination("missing hostname")
        return parsed

    async def vet(self, url: str) -> httpx.URL:
        """Check a URL before keeping it (e.g. at run creation): its form, and every address
        its host resolves to now. Each request is vetted again when it connects."""
        parsed = self.parse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = await _resolve(parsed.host, port, min(self.timeout, 5.0))
        except httpcore.ConnectError as exc:
            raise BlockedDestination(str(exc)) from None
        self.policy.check(parsed.host, addresses)
        return parsed

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POST `content` (channels send JSON bytes too), retrying as the class says; the
        last response whatever its status, its body read. Raises BlockedDestination at
        once, or the last httpx.TransportError when no attempt got an answer."""
        self.parse(url)
        attempt = 1
        while True:
            try:
                response = await self._client.post(url, content=content, headers=headers)
            except httpx.TransportError as exc:
                if attempt >= self.attempts:
                    raise
                wanted, why = None, str(exc) or type(exc).__name__
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                if attempt >= self.attempts:
                    return response
                wanted, why = _retry_after(response), f"status {response.status_code}"
            delay = self._delay(attempt, wanted)
            log.info("POST %s failed (%s); retrying in %.1fs", url, why, delay)
            await asyncio.sleep(delay)
            attempt += 1

    def _delay(self, attempt: int, wanted: float | None) -> float:
        """Doubling backoff with jitter, or the receiver's Retry-After; both capped."""
        if wanted is not None:
            return min(wanted, self.max_delay)
        jitter = 0.5 + random.random() / 2  # noqa: S311 - spreads retries, no secret
        return min(self.backoff * 2 ** (attempt - 1), self.max_delay) * jitter

    async def aclose(self) -> None:
        await self._client.aclose()

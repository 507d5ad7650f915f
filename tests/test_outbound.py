"""The outbound HTTP client (runtime/outbound.py) against a real local receiver: it reaches
only public addresses and the operator's networks, connects to the address it vetted, and
retries what is worth retrying."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx
import pytest

from tenantgraph.runtime.outbound import AddressPolicy, BlockedDestination, OutboundClient

from .receiver import HANG, RECEIVER_HOST, receiver

RECEIVER_NET = [ipaddress.ip_network(f"{RECEIVER_HOST}/32")]


@pytest.fixture
async def hook():
    async with receiver() as state:
        yield state


@pytest.fixture
async def client():
    opened = OutboundClient(RECEIVER_NET, timeout=5, backoff=0.01)
    yield opened
    await opened.aclose()


def test_only_public_addresses_and_the_operators_networks_are_allowed():
    policy = AddressPolicy()
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 - an address refused, not one bound
        "224.0.0.1",
        "233.252.0.1",  # multicast, though "global"
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
    ):
        assert policy.refusal(address) is not None, address
    for address in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"):
        assert policy.refusal(address) is None, address
    allowing = AddressPolicy([ipaddress.ip_network("10.0.0.0/8")])
    assert allowing.refusal("10.1.2.3") is None
    assert allowing.refusal("::ffff:10.1.2.3") is None
    assert allowing.refusal("127.0.0.1") is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://10.0.0.1:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "http:///nohost",
    ],
)
async def test_private_loopback_and_metadata_urls_are_refused_before_connecting(hook, url):
    """Without an allowed network the receiver is out of reach, under any of its names."""
    port = httpx.URL(hook.url).port
    strict = OutboundClient()
    try:
        for target in (url.format(port=port), hook.url + "/hook"):
            with pytest.raises(BlockedDestination):
                await strict.vet(target)
            with pytest.raises(BlockedDestination):
                await strict.post(target, b"{}")
    finally:
        await strict.aclose()
    assert hook.received == []


async def test_an_allowed_network_is_reached_and_5xx_and_429_are_retried(hook, client):
    hook.answers = [500, 429, 200]
    response = await client.post(hook.url + "/hook", b'{"n": 1}', {"X-Test": "yes"})
    assert response.status_code == 200
    assert [r.body for r in hook.received] == [b'{"n": 1}'] * 3
    assert hook.received[0].headers["x-test"] == "yes"


async def test_retries_are_bounded_and_a_4xx_is_not_retried(hook, client):
    hook.answers = [500, 500, 500, 500]
    assert (await client.post(hook.url, b"{}")).status_code == 500
    assert len(hook.received) == client.attempts == 3
    hook.answers = [404]
    assert (await client.post(hook.url, b"{}")).status_code == 404
    assert len(hook.received) == 4


async def test_a_hanging_receiver_times_out(hook):
    hook.answers = [HANG, HANG]
    impatient = OutboundClient(RECEIVER_NET, timeout=0.2, attempts=2, backoff=0.01)
    try:
        with pytest.raises(httpx.TimeoutException):
            await impatient.post(hook.url, b"{}")
    finally:
        await impatient.aclose()
    assert len(hook.received) == 2


async def test_the_connection_goes_to_the_address_that_was_vetted(hook, client, monkeypatch):
    """A name is resolved once, by the client, and the connection goes to that address:
    `rebind.invalid` exists only in this resolver (the system's cannot answer it), so the
    receiver is reached only through the vetted address, and a name that also answers a
    refused address is refused whole."""
    loop = asyncio.get_running_loop()
    answers = {"rebind.invalid": [RECEIVER_HOST], "mixed.invalid": [RECEIVER_HOST, "127.0.0.1"]}
    real = loop.getaddrinfo

    async def resolver(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    url = httpx.URL(hook.url).copy_with(host="rebind.invalid", path="/hook")
    response = await client.post(str(url), b"{}")
    assert response.status_code == 200
    assert hook.received[0].headers["host"] == f"rebind.invalid:{url.port}"
    with pytest.raises(BlockedDestination, match=r"loopback address 127\.0\.0\.1"):
        await client.post(str(url.copy_with(host="mixed.invalid")), b"{}")
    assert len(hook.received) == 1

"""Callback address policy: link-local and metadata addresses always refused; loopback and private ones
with --callback-deny-private; checked on the resolved address at connect time. Names are resolved by an
injected resolver, so these tests never send traffic anywhere but loopback."""

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestClient

from speechsvc.callbacks import AddressRefused, check_address, validate_callback_url
from speechsvc.errors import InvalidCallbackUrl
from tests.conftest import corpus
from tests.integration.helpers import poll_until, post_audio
from tests.receiver import CallbackReceiver

ClientFactory = Callable[..., Awaitable[TestClient]]


class MapResolver(AbstractResolver):
    """Resolves names from a fixed map: address-policy tests never touch real DNS or other hosts."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        address = self.names[host]
        return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]  # fmt: skip

    async def close(self) -> None:
        pass


async def finished(client: TestClient, request_id: str) -> dict[str, Any]:
    await poll_until(client, request_id, {"Completed", "Failed"}, timeout_s=30)
    response = await client.get(f"/v1/transcribe/{request_id}", params={"format": "json"})
    return await response.json() if response.headers["x-status"] == "Completed" else {}


@pytest.mark.parametrize(
    ("address", "deny_private", "refused"),
    [
        ("169.254.169.254", False, True),  # cloud metadata
        ("169.254.1.1", False, True),
        ("fe80::1", False, True),
        ("fd00:ec2::254", False, True),  # AWS metadata over IPv6
        ("100.100.100.200", False, True),  # Alibaba metadata
        ("::ffff:169.254.169.254", False, True),  # IPv4-mapped
        ("0.0.0.0", False, True),
        ("224.0.0.1", False, True),
        ("127.0.0.1", False, False),
        ("127.0.0.1", True, True),
        ("10.1.2.3", True, True),
        ("192.168.1.1", True, True),
        ("172.16.0.1", True, True),
        ("::1", True, True),
        ("203.0.113.7", True, True),  # documentation range: not globally routable, refused too
        ("93.184.216.34", True, False),
    ],
)
def test_check_address(address: str, deny_private: bool, refused: bool) -> None:
    import ipaddress

    if refused:
        with pytest.raises(AddressRefused):
            check_address(ipaddress.ip_address(address), deny_private=deny_private)
    else:
        check_address(ipaddress.ip_address(address), deny_private=deny_private)


@pytest.mark.parametrize(
    "url",
    ["ftp://a/b", "file:///etc/passwd", "gopher://x", "http://", "//host/x", "http://metadata.google.internal/",
     "http://[fe80::1]/", "http://169.254.169.254/latest/meta-data"],
)  # fmt: skip
def test_refused_urls_at_submit(url: str) -> None:
    with pytest.raises(InvalidCallbackUrl):
        validate_callback_url(url, deny_private=False)


def test_deny_private_refuses_literal_private_urls() -> None:
    validate_callback_url("http://127.0.0.1:9/x", deny_private=False)
    with pytest.raises(InvalidCallbackUrl):
        validate_callback_url("http://127.0.0.1:9/x", deny_private=True)


async def test_name_resolving_to_link_local_is_refused_at_connect(make_client: Any) -> None:
    resolver = MapResolver({"hooks.example": "169.254.169.254"})
    client = await make_client(resolver=resolver)
    response = await post_audio(client, corpus("stereo_diarization.wav"), callback="http://hooks.example/cb")
    assert response.status == 202  # the URL text is fine; the resolved address is not
    result = await finished(client, response.headers["x-requestid"])
    assert resolver.asked == ["hooks.example"]
    assert "169.254.169.254" in result["callback"]["error"]
    assert result["callback"]["http_status"] is None


async def test_deny_private_refuses_loopback_names(make_client: Any) -> None:
    with CallbackReceiver() as receiver:
        port = receiver.server.server_address[1]
        client = await make_client(
            resolver=MapResolver({"hooks.example": "127.0.0.1"}), callback_deny_private=True
        )
        response = await post_audio(
            client, corpus("stereo_diarization.wav"), callback=f"http://hooks.example:{port}/cb"
        )
        result = await finished(client, response.headers["x-requestid"])
        assert receiver.requests == []
    assert "private or loopback" in result["callback"]["error"]


async def test_allowed_name_resolves_and_is_called(make_client: Any) -> None:
    with CallbackReceiver() as receiver:
        port = receiver.server.server_address[1]
        client = await make_client(resolver=MapResolver({"hooks.example": "127.0.0.1"}))
        await post_audio(client, corpus("stereo_diarization.wav"), callback=f"http://hooks.example:{port}/cb")
        (call,) = await receiver.arrived(1)
    assert call.path == "/cb"

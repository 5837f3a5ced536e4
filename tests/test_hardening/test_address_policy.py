"""Callback address policy: link-local and metadata addresses always refused; loopback and private ones
with --callback-deny-private; checked on the resolved address at connect time. Names are resolved by an
injected resolver, so these tests never send traffic anywhere but loopback."""

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestClient

from speechsvc.api.keys import SERVICE
from speechsvc.delivery.address_policy import (
    AddressRefused,
    check_address,
    check_host,
    connect_host,
    validate_callback_url,
)
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


# Finding 1 of the security review: every spelling of a forbidden address, as the HTTP client will read it.
LOOPBACK_SPELLINGS = [
    "127。0。0。1",  # ideographic full stops: yarl's IDNA mapping makes them dots
    "１２７.０.０.１",  # full-width digits
    "127．0．0．1",  # full-width full stops
    "127｡0｡0｡1",  # half-width ideographic full stops
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "[::ffff:7f00:1]",
    "[64:ff9b::7f00:1]",  # NAT64
    "[2002:7f00:1::]",  # 6to4
    "2130706433",  # decimal
    "0177.0.0.1",  # octal
    "0x7f.0.0.1",  # hex
    "0x7f000001",
    "127.1",  # short form
    "127.0.0.1.",  # trailing dot
    "user:secret@127.0.0.1",  # userinfo
    "example.com@127.0.0.1",  # userinfo that looks like a host
    "localhost",
    "LOCALHOST.",
    "ｌｏｃａｌｈｏｓｔ",  # full-width letters
]
METADATA_SPELLINGS = [
    "169。254。169。254",
    "１６９.２５４.１６９.２５４",
    "169．254．169．254",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "2852039166",
    "0251.0376.0251.0376",
    "0xa9.0xfe.0xa9.0xfe",
    "169.254.43518",
    "169.254.169.254.",
    "metadata.google.internal.",
    "METADATA.GOOGLE.INTERNAL",
    "[fe80::1%25eth0]",
    "[fd00:ec2::254]",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_loopback_spelling_is_refused_with_deny_private(host: str) -> None:
    url = f"http://{host}:8080/cb"
    with pytest.raises(InvalidCallbackUrl):
        validate_callback_url(url, deny_private=True)
    with pytest.raises(AddressRefused):  # and at connect time, on the host aiohttp connects to
        check_host(connect_host(url), deny_private=True)


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
def test_every_metadata_spelling_is_refused_by_default(host: str) -> None:
    url = f"http://{host}/latest/meta-data"
    with pytest.raises(InvalidCallbackUrl):
        validate_callback_url(url, deny_private=False)
    with pytest.raises(AddressRefused):
        check_host(connect_host(url), deny_private=False)


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/cb", "https://93.184.216.34/x", "http://[2606:2800:220:1::]/x",
     "http://127.0.0.1@hooks.example.com/cb", "http://bücher.example/cb", "http://0x7f.example/cb"],
)  # fmt: skip
def test_public_hosts_pass(url: str) -> None:
    assert validate_callback_url(url, deny_private=True) == url


async def test_unicode_spelling_is_refused_at_submit_and_never_called(make_client: Any) -> None:
    with CallbackReceiver() as receiver:
        port = receiver.server.server_address[1]
        client = await make_client(callback_deny_private=True)
        for host in ("127。0。0。1", "１２７.０.０.１", "127．0．0．1"):
            response = await post_audio(
                client, corpus("stereo_diarization.wav"), callback=f"http://{host}:{port}/"
            )
            body = await response.json()
            assert response.status == 400 and body["error"]["code"] == "invalid_callback_url", body
        # the job dialects' webhooks go through the same check
        data = aiohttp.FormData()
        data.add_field("callback_url", f"http://127。0。0。1:{port}/")
        data.add_field("file", corpus("stereo_diarization.wav").read_bytes(), filename="a.wav",
                       content_type="audio/wav")  # fmt: skip
        response = await client.post("/v1/transcription-jobs", data=data)
        assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_callback_url"
        assert receiver.requests == []


async def test_unicode_spelling_is_refused_at_connect_time(make_client: Any) -> None:
    """Even a URL that got past submit (stored before the fix, say) is checked on the host aiohttp will
    connect to: the callback and the webhook sender both refuse it, and nothing arrives."""
    with CallbackReceiver() as receiver:
        port = receiver.server.server_address[1]
        client = await make_client(callback_deny_private=True)
        sender = client.app[SERVICE].webhooks.sender
        for host in ("127。0。0。1", "[::ffff:127.0.0.1]", "2130706433", "127.0.0.1."):
            outcome = await sender.send(f"http://{host}:{port}/", {}, b"{}", "msg_test")
            assert outcome.get("refused") and outcome["http_status"] is None, outcome
        assert receiver.requests == []
        outcome = await sender.send("http://169。254。169。254/", {}, b"{}", "msg_test")
        assert outcome.get("refused")


async def test_names_resolving_to_forbidden_ranges_are_refused_at_connect(make_client: Any) -> None:
    resolver = MapResolver(
        {"a.example": "10.0.0.7", "b.example": "::ffff:127.0.0.1", "c.example": "169.254.0.9"}
    )
    client = await make_client(resolver=resolver, callback_deny_private=True)
    sender = client.app[SERVICE].webhooks.sender
    for name in ("a.example", "b.example", "c.example"):
        outcome = await sender.send(f"http://{name}/cb", {}, b"{}", "msg_test")
        assert outcome.get("refused"), outcome
    assert resolver.asked == ["a.example", "b.example", "c.example"]

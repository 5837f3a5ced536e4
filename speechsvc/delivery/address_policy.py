"""Where callbacks and webhooks may go: the address policy (API.md §1, "Callback targets").

Link-local, metadata, multicast, unspecified and reserved addresses are always refused; with
deny_private, loopback and private ranges too.

The host is checked exactly as the HTTP client will connect to it. aiohttp parses the URL with yarl,
which applies IDNA/UTS-46 mapping: `127。0。0。1` (ideographic full stops), `１２７.０.０.１` (full-width
digits) and `127．0．0．1` all become the literal `127.0.0.1`, and aiohttp connects to a literal IP
*without asking the resolver*. So the policy never looks at the raw URL text: it takes yarl's host
(`connect_host`), reads every literal spelling the C library would accept (decimal `2130706433`, octal
`0177.0.0.1`, hex `0x7f.1`, short `127.1`, a trailing dot, IPv4 inside IPv6), and checks the address. A name
is checked again at connect time on every address it resolves to, inside the connector's resolver
(`PolicyResolver`), so there is no DNS-rebinding gap between check and use.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from speechsvc.errors import InvalidCallbackUrl

MAX_URL_CHARS = 2048
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}
)
# Cloud metadata services that are not link-local (AWS IPv6, Alibaba): refused like link-local ones.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What inet_aton reads as IPv4: digits, hex digits with 0x, and dots (decimal, octal, hex, short forms).
_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]{1,64}", re.ASCII | re.IGNORECASE)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The callback address is not allowed by the address policy."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        return ipaddress.IPv4Address(int(address))
    return None


def check_address(address: IPAddress, *, deny_private: bool) -> None:
    """Raise AddressRefused for link-local/metadata addresses, and for private ones if asked."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            check_address(embedded, deny_private=deny_private)
            if address.ipv4_mapped is not None:
                return  # ::ffff:a.b.c.d is the IPv4 host itself
    if (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address in METADATA_ADDRESSES
    ):
        raise AddressRefused(f"callback address {address} is link-local, metadata or reserved")
    if deny_private and (address.is_private or address.is_loopback):
        raise AddressRefused(f"callback address {address} is private or loopback")


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any spelling the resolver would accept; None for a name."""
    host = host.rstrip(".").strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def connect_host(url: str) -> str:
    """The host the HTTP client will connect to for `url` (yarl's normalised host, as aiohttp uses it)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise InvalidCallbackUrl(
            f"the callback URL cannot be parsed: {exc}"[:200], param="callback"
        ) from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise InvalidCallbackUrl("the callback must be an absolute http:// or https:// URL", param="callback")
    return parsed.raw_host


def check_host(host: str, *, deny_private: bool) -> None:
    """The policy for a host as connected to: metadata names, literal addresses in every spelling, and
    (with deny_private) `localhost`. Other names are checked on their resolved addresses at connect time."""
    name = host.rstrip(".").lower()
    if name in METADATA_HOSTS:
        raise AddressRefused(f"callback host {name} is a metadata service")
    if deny_private and (name == "localhost" or name.endswith(".localhost")):
        raise AddressRefused(f"callback host {name} is loopback")
    address = literal_address(name)
    if address is not None:
        check_address(address, deny_private=deny_private)


def validate_callback_url(url: str, *, deny_private: bool) -> str:
    """Check a callback URL at submit time (scheme, host as connected to, literal addresses); 400 if it is
    refused."""
    if len(url) > MAX_URL_CHARS:
        raise InvalidCallbackUrl(
            f"the callback URL is longer than {MAX_URL_CHARS} characters", param="callback"
        )
    try:
        check_host(connect_host(url), deny_private=deny_private)
    except AddressRefused as exc:
        raise InvalidCallbackUrl(str(exc), param="callback") from exc
    return url


class PolicyResolver(AbstractResolver):
    """Resolves with `inner`, then drops every address the policy refuses."""

    def __init__(self, inner: AbstractResolver, *, deny_private: bool) -> None:
        self.inner = inner
        self.deny_private = deny_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        check_host(host, deny_private=self.deny_private)  # a literal never reaches a real resolver unchecked
        allowed: list[ResolveResult] = []
        refusal = ""
        for entry in await self.inner.resolve(host, port, family):
            try:
                check_address(ipaddress.ip_address(entry["host"]), deny_private=self.deny_private)
                allowed.append(entry)
            except AddressRefused as exc:
                refusal = str(exc)
        if not allowed:
            raise AddressRefused(refusal or f"{host} resolves to no allowed address")
        return allowed

    async def close(self) -> None:
        await self.inner.close()

"""Server-side request forgery guard for every URL jetscribe fetches or posts to on a user's behalf.

Webhook URLs and `audio_url` downloads come from clients. Left unchecked they would let anyone make
the gateway or a worker call loopback services, the private network or a cloud metadata endpoint.
Two checks close that:

- `check_public_url` at submit time: the URL must be absolute http(s) and every address its host
  resolves to must be public. The gateway answers 422 with the message.
- `guarded_connector` at request time: its resolver checks every address it returns, and its socket
  factory checks the address actually connected to. A name that resolved to a public address at
  submit time and to 127.0.0.1 now (DNS rebinding) is refused, and so is an IP literal reached
  through a redirect, because the check happens on the very address the socket connects to.

`allow_private=True` (JETSCRIBE_ALLOW_PRIVATE_TARGETS) turns the address checks off, for development
and tests; the http(s) check stays.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from jetscribe.errors import UnsafeTargetError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
METADATA_ADDRESSES: Final = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
_HINT: Final = "public targets only (set JETSCRIBE_ALLOW_PRIVATE_TARGETS=true for development)"


def non_public_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address (e.g. "a loopback address"), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "a non-public address"),
    )
    return next((reason for bad, reason in checks if bad), None)


def http_host(url: str, *, what: str = "webhook_url") -> str:
    """The host of an absolute http(s) URL; UnsafeTargetError for anything else."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise UnsafeTargetError(f"{what} {url!r} is not a valid URL: {exc}") from exc
    if not parsed.absolute or parsed.scheme not in ALLOWED_SCHEMES or not parsed.raw_host:
        raise UnsafeTargetError(f"{what} {url!r} is not an absolute http:// or https:// URL")
    return parsed.raw_host


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _refuse(what: str, host: str, address: IPAddress) -> None:
    reason = non_public_reason(address)
    if reason is None:
        return
    if _literal(host) == address:
        raise UnsafeTargetError(f"{what} host {host} is {reason}; {_HINT}")
    raise UnsafeTargetError(f"{what} host {host} resolves to {address}, {reason}; {_HINT}")


async def check_public_url(url: str, *, allow_private: bool, what: str = "webhook_url") -> None:
    """Refuse `url` unless it is absolute http(s) and every address of its host is public.

    Raises UnsafeTargetError with a message that says what to fix, e.g. "webhook_url host
    127.0.0.1 is a loopback address; public targets only (set JETSCRIBE_ALLOW_PRIVATE_TARGETS=true
    for development)". A host that does not resolve is refused too. `what` names the field in the
    message. With `allow_private` only the URL's form is checked and nothing is resolved.
    """
    host = http_host(url, what=what)
    if allow_private:
        return
    literal = _literal(host)
    if literal is not None:
        _refuse(what, host, literal)
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTargetError(f"{what} host {host} does not resolve: {exc}") from exc
    for _family, _type, _proto, _canonname, sockaddr in infos:
        _refuse(what, host, ipaddress.ip_address(sockaddr[0]))


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses the host if any address is not public.

    The connector connects only to the addresses returned here, so the check and the connection
    use the same resolution: a rebinding DNS server gets no second answer in between.
    """

    def __init__(self, *, what: str = "target") -> None:
        self._inner = ThreadedResolver()
        self._what = what

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            _refuse(self._what, host, ipaddress.ip_address(result["host"]))
        return results

    async def close(self) -> None:
        await self._inner.close()


def _guarded_socket(what: str, addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
    """Socket factory that refuses to open a socket towards a non-public address.

    aiohttp does not pass IP-literal hosts (such as a redirect to http://127.0.0.1/) through the
    resolver; this is where those are caught.
    """
    family, type_, proto, _canonname, sockaddr = addr_info
    host = str(sockaddr[0])
    _refuse(what, host, ipaddress.ip_address(host))
    return socket.socket(family=family, type=type_, proto=proto)


def guarded_connector(allow_private: bool, *, what: str = "target", limit: int = 100) -> aiohttp.TCPConnector:
    """A TCPConnector for outgoing requests to user-supplied URLs (webhooks, `audio_url` downloads).

    Unless `allow_private`, every resolved and every connected address must be public; a refused
    one makes the request raise UnsafeTargetError. Call it inside a running event loop.
    """
    if allow_private:
        return aiohttp.TCPConnector(limit=limit)
    return aiohttp.TCPConnector(
        limit=limit, resolver=GuardedResolver(what=what), socket_factory=functools.partial(_guarded_socket, what)
    )

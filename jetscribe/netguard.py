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

Public means globally routable unicast: the IANA special-purpose blocks of both families are
refused (`NON_PUBLIC_IPV4`, `NON_PUBLIC_IPV6`), so is all IPv6 outside 2000::/3, and an IPv6 form
that reaches an IPv4 address (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by
that IPv4 address. Teredo (`2001::/32`) is refused outright, naming its de-obfuscated client.

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


def _table(*rows: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(network), reason) for network, reason in rows)


NON_PUBLIC_IPV4: Final = _table(
    # IANA IPv4 Special-Purpose Address Registry, every block not globally reachable, plus the
    # deprecated 6to4 relay anycast; Python's own `is_global` table differs between releases.
    ("0.0.0.0/32", "an unspecified address"),
    ("0.0.0.0/8", "a 'this network' address (RFC 791)"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared address (carrier-grade NAT, RFC 6598)"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol-assignment address (RFC 6890)"),
    ("192.0.2.0/24", "a documentation address (RFC 5737)"),
    ("192.88.99.0/24", "a 6to4 relay anycast address (deprecated, RFC 7526)"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address (RFC 2544)"),
    ("198.51.100.0/24", "a documentation address (RFC 5737)"),
    ("203.0.113.0/24", "a documentation address (RFC 5737)"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
)
NON_PUBLIC_IPV6: Final = _table(
    # IANA IPv6 Special-Purpose Address Registry. Checked after the forms that reach an IPv4
    # address (mapped, NAT64, 6to4, Teredo); the first match wins, so specific blocks come first.
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "an IPv4-compatible address (deprecated, RFC 4291)"),
    ("::ffff:0:0:0/96", "an IPv4-translated address (RFC 2765)"),
    ("64:ff9b:1::/48", "a local-use NAT64 address (RFC 8215)"),
    ("100::/64", "a discard-only address (RFC 6666)"),
    ("2001:db8::/32", "a documentation address (RFC 3849)"),
    ("2001:2::/48", "a benchmarking address (RFC 5180)"),
    ("2001::/23", "an IETF protocol-assignment address (RFC 2928)"),
    ("3fff::/20", "a documentation address (RFC 9637)"),
    ("fc00::/7", "a unique-local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address (deprecated, RFC 3879)"),
    ("ff00::/8", "a multicast address"),
    # Everything else outside global unicast: ::/8, 100::/8, 5f00::/16 (SRv6 SIDs), and the
    # unassigned rest. Global unicast is 2000::/3 (RFC 4291, IANA IPv6 Address Space).
    ("::/3", "outside the global unicast range 2000::/3"),
    ("4000::/2", "outside the global unicast range 2000::/3"),
    ("8000::/1", "outside the global unicast range 2000::/3"),
)
NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
"""RFC 6052: the IPv4 address is the last 32 bits; a NAT64 gateway reaches it for us."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 form reaches, with the form's name; None for a plain IPv6 address.

    IPv4-mapped `::ffff:a.b.c.d` (RFC 4291), NAT64 `64:ff9b::a.b.c.d` (RFC 6052) and 6to4
    `2002:AABB:CCDD::/48` (RFC 3056): a connection to any of them ends at that IPv4 address.
    """
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped address of", address.ipv4_mapped
    if address in NAT64_WELL_KNOWN:
        return "a NAT64 address of", ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.sixtofour is not None:
        return "a 6to4 address of", address.sixtofour
    return None


def _ipv6_reason(address: ipaddress.IPv6Address) -> str | None:
    if address.teredo is not None:
        # RFC 4380 stores the client's IPv4 address inverted; `ipaddress` undoes that. Teredo is
        # refused whatever it carries: its traffic goes over UDP through third-party relays.
        client = address.teredo[1]
        inner = non_public_reason(client)
        return f"a Teredo address of {client}, {inner}" if inner else f"a Teredo tunnel address (of {client})"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        form, ipv4 = embedded
        inner = non_public_reason(ipv4)
        return f"{form} {ipv4}, {inner}" if inner else None
    listed = next((reason for network, reason in NON_PUBLIC_IPV6 if address in network), None)
    if listed is not None:
        return listed
    return None if address.is_global else "a non-public address"


def non_public_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address (e.g. "a loopback address"), or None if it is.

    An IPv6 form that reaches an IPv4 address is judged by that address ("a 6to4 address of
    127.0.0.1, a loopback address"). The tables above come first; Python's `is_global` is a last
    net for blocks registered after them.
    """
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        return _ipv6_reason(address)
    listed = next((reason for network, reason in NON_PUBLIC_IPV4 if address in network), None)
    if listed is not None:
        return listed
    return None if address.is_global else "a non-public address"


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

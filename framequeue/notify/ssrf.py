"""SSRF guard for URLs the server will call: only public addresses, checked after resolution.

`check_url` returns the addresses a caller must connect to (pin), so that a DNS answer that changes
between the check and the connect (DNS rebinding) cannot send the request elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Callable

import httpx

from framequeue.errors import InvalidParams

__all__ = ["IPAddress", "Resolver", "check_url", "resolve_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) -> the addresses a connection to host may use, as text; raises OSError when it cannot
Resolver = Callable[[str, int], list[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}

_SHARED_V4 = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_PRIVATE_NETS = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
    ipaddress.IPv6Network("fc00::/7"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: last 32 bits are IPv4
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use prefix
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d form
#: kinds a development setup may call (receivers in docker-compose or on the laptop)
_PRIVATE_KINDS = frozenset({"loopback", "private", "shared (100.64.0.0/10)"})

# WHATWG URL "ends in a number": such a host is an IPv4 address in some encoding, never a DNS name
_NUMERIC_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


def resolve_host(host: str, port: int) -> list[str]:
    """Every IPv4/IPv6 address getaddrinfo gives for host (deduplicated, in order); raises OSError."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    families = (socket.AF_INET, socket.AF_INET6)
    return list(dict.fromkeys(str(info[4][0]) for info in infos if info[0] in families))


def check_url(url: str, *, allow_private: bool = False, resolve: Resolver = resolve_host) -> list[IPAddress]:
    """Addresses to connect to for url; raises InvalidParams when the URL may not be called.

    Refused: a scheme other than https (plain http only with ``allow_private``, the development flag),
    userinfo, no host, a port below 1024 other than 80 and 443 (SSH, SMTP and the like: only with
    ``allow_private``), or a host with any address that is not globally routable (``allow_private`` lets
    loopback/private/shared addresses through, never link-local, unspecified, multicast or reserved ones).
    A resolver failure is raised as InvalidParams
    chained from the OSError, so that a caller at send time can tell a transient DNS failure (retry)
    from a refusal (give up).
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidParams(f"URL is not valid: {exc}") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise InvalidParams(f"URL scheme must be https, not {parsed.scheme or 'missing'!r}")
    if parsed.scheme == "http" and not allow_private:
        raise InvalidParams("URL scheme must be https (plain http only with FQ_WEBHOOK_ALLOW_PRIVATE, for development)")
    # httpx drops an empty userinfo ("http://@host/"); look at the raw authority too
    if parsed.userinfo or "@" in urllib.parse.urlsplit(url).netloc:
        raise InvalidParams("URL must not contain a user name or password (user:password@host)")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise InvalidParams("URL needs a host name or address")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    if port < 1024 and port not in (80, 443) and not allow_private:
        raise InvalidParams(f"URL port {port} is not allowed: use 443, or a port from 1024 up")

    literal = _parse_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            answers = resolve(host, port)
        except OSError as exc:
            raise InvalidParams(f"URL host {host!r} could not be resolved: {exc}") from exc
        if not answers:
            raise InvalidParams(f"URL host {host!r} resolved to no address")
        try:
            addresses = [_unwrap_mapped(ipaddress.ip_address(answer)) for answer in answers]
        except ValueError:
            raise InvalidParams(f"URL host {host!r} resolved to an invalid address") from None

    for address in addresses:
        kind = _non_public_kind(address)
        if kind is None or (allow_private and kind in _PRIVATE_KINDS):
            continue
        shown = "" if literal is not None else f" resolves to {address}, which"
        raise InvalidParams(
            f"URL host {host!r}{shown} is not a public address ({kind}); "
            "the server calls only publicly routable addresses"
        )
    return addresses


def _parse_literal(host: str) -> IPAddress | None:
    """The address an IP-literal host means (in any encoding resolvers accept); None for a DNS name."""
    if ":" in host:
        try:
            return _unwrap_mapped(ipaddress.IPv6Address(host.replace("%25", "%")))
        except ValueError:
            raise InvalidParams(f"URL host {host!r} is not a valid IPv6 address") from None
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "127.0.0.1." is the same address
    if not _NUMERIC_PART.match(parts[-1]):
        return None
    # Parse like inet_aton / the WHATWG IPv4 parser: 1 to 4 parts, each decimal, octal (0…) or hex (0x…),
    # the last filling the remaining bytes; "2130706433", "0x7f.1" and "017700000001" are all 127.0.0.1.
    numbers: list[int] = []
    for part in parts:
        if not _NUMERIC_PART.match(part):
            numbers = []
            break
        if part[:2] in ("0x", "0X"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            if not set(part) <= set("01234567"):
                numbers = []
                break
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    if not numbers or len(numbers) > 4 or any(n > 255 for n in numbers[:-1]):
        raise InvalidParams(f"URL host {host!r} looks like an IPv4 address but is not a valid one")
    last_bytes = 5 - len(numbers)
    if numbers[-1] >= 256**last_bytes:
        raise InvalidParams(f"URL host {host!r} looks like an IPv4 address but is not a valid one")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _unwrap_mapped(address: IPAddress) -> IPAddress:
    # ::ffff:a.b.c.d is how a dual-stack socket reaches a.b.c.d: judge and connect as the IPv4 address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _non_public_kind(address: IPAddress) -> str | None:
    """Why address is not a public destination, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        # Forms that carry an IPv4 address: judged by that address, since that is where packets end up.
        embedded: ipaddress.IPv4Address | None = None
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.sixtofour is not None:
            embedded = address.sixtofour
        elif address in _NAT64_LOCAL:
            return "local-use NAT64"
        elif address in _V4_COMPATIBLE and int(address) > 1:
            return "deprecated IPv4-compatible"
        if embedded is not None:
            kind = _non_public_kind(embedded)
            return None if kind is None else f"{kind} (embedded {embedded})"
        if address.is_site_local:
            return "site-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if any(address in net for net in _PRIVATE_NETS):
        return "private"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED_V4:
        return "shared (100.64.0.0/10)"
    if address.is_reserved or not address.is_global:
        return "reserved or non-global"
    return None

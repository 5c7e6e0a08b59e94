"""SSRF guard: every non-public destination is refused, whatever the encoding or the resolver says."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from framequeue.errors import InvalidParams
from framequeue.notify.ssrf import check_url

PUBLIC_V4 = "93.184.216.34"


class resolves_to:
    """A stub resolver that answers every name with `answers` and records what it was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return list(self.answers)


# The stub answers with a public address, so each refusal must come from parsing the URL itself.
REFUSED = [
    "https://127.0.0.1/",
    "https://[::1]/",
    "https://10.0.0.5/",
    "https://169.254.169.254/latest/meta-data/",
    "https://0.0.0.0/",
    "https://2130706433/",
    "https://0x7f.1/",
    "https://017700000001/",
    "https://127.1/",
    "https://127.0.0.1./",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:a9fe:a9fe]/",  # mapped 169.254.169.254 in hex
    "https://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "https://[2002:a00:5::]/",  # 6to4 of 10.0.0.5
    "https://[::7f00:1]/",  # deprecated IPv4-compatible
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://255.255.255.255/",
    "https://08.1/",  # looks numeric, is not a valid address
    "file:///etc/passwd",
    "gopher://example.com:70/_x",
    "ftp://example.com/",
    "https://user:pw@example.com/",
    "https://user@example.com/",
    "https://@example.com/",
    "https:///no-host",
    "example.com/no-scheme",
    "http://hooks.example.com/",  # plain http: only behind the development flag
    "https://hooks.example.com:22/",  # a well-known port other than 80/443
    "https://hooks.example.com:25/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused(url: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        check_url(url, resolve=resolves_to(PUBLIC_V4))
    assert caught.value.http_status == 422
    assert "pw" not in caught.value.message  # never echo credentials


@pytest.mark.parametrize(
    "answers",
    [["10.0.0.5"], [PUBLIC_V4, "127.0.0.1"], ["::1"], ["::ffff:10.0.0.1"], ["169.254.169.254"], ["fd00::1"]],
)
def test_public_name_resolving_to_a_private_address_is_refused(answers: list[str]) -> None:
    with pytest.raises(InvalidParams, match=r"hooks\.example\.com"):
        check_url("https://hooks.example.com/cb", resolve=resolves_to(*answers))


def test_public_name_resolving_to_public_addresses_is_accepted_without_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_connect(*args: object, **kwargs: object) -> None:
        raise AssertionError("check_url must not connect")

    monkeypatch.setattr(socket, "create_connection", no_connect)
    resolve = resolves_to(PUBLIC_V4, "2606:2800:220:1:248:1893:25c8:1946")
    addresses = check_url("https://hooks.example.com/cb?x=1", resolve=resolve)
    assert addresses == [
        ipaddress.IPv4Address(PUBLIC_V4),
        ipaddress.IPv6Address("2606:2800:220:1:248:1893:25c8:1946"),
    ]
    assert resolve.asked == [("hooks.example.com", 443)]


def test_public_literals_and_nat64_of_a_public_address_are_accepted() -> None:
    resolve = resolves_to("127.0.0.1")  # must not be consulted for literals
    assert check_url(f"https://{PUBLIC_V4}:8080/", resolve=resolve) == [ipaddress.IPv4Address(PUBLIC_V4)]
    assert check_url("https://[64:ff9b::5db8:d822]/", resolve=resolve)
    assert resolve.asked == []


def test_allow_private_accepts_loopback_and_private_but_not_metadata() -> None:
    resolve = resolves_to("10.1.2.3")
    assert check_url("http://127.0.0.1:8000/", allow_private=True) == [ipaddress.IPv4Address("127.0.0.1")]
    assert check_url("http://[::1]:8000/", allow_private=True) == [ipaddress.IPv6Address("::1")]
    # a mapped address is judged, and connected to, as the IPv4 address it carries
    assert check_url("http://[::ffff:10.0.0.5]/", allow_private=True) == [ipaddress.IPv4Address("10.0.0.5")]
    assert check_url("http://receiver.internal/", allow_private=True, resolve=resolve)
    for url in ("http://169.254.169.254/", "http://0.0.0.0/", "http://224.0.0.1/", "file:///etc/passwd"):
        with pytest.raises(InvalidParams):
            check_url(url, allow_private=True)


def test_resolver_failure_is_refused_and_chained_to_the_os_error() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(InvalidParams, match="could not be resolved") as caught:
        check_url("https://nowhere.invalid/", resolve=fail)
    assert isinstance(caught.value.__cause__, OSError)


def test_default_resolver_is_used_and_refuses_localhost() -> None:
    with pytest.raises(InvalidParams, match="loopback"):
        check_url("https://localhost/")  # /etc/hosts: no traffic leaves the machine


def test_plain_http_and_low_ports_only_behind_the_development_flag() -> None:
    resolve = resolves_to(PUBLIC_V4)
    assert check_url("https://hooks.example.com:8443/", resolve=resolve)
    assert check_url("https://hooks.example.com:80/", resolve=resolve)
    assert check_url("http://hooks.example.com/", allow_private=True, resolve=resolve)
    assert check_url("https://hooks.example.com:22/", allow_private=True, resolve=resolve)
    with pytest.raises(InvalidParams, match="https"):
        check_url("http://hooks.example.com/", resolve=resolve)
    with pytest.raises(InvalidParams, match="port 22"):
        check_url("https://hooks.example.com:22/", resolve=resolve)

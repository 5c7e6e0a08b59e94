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
    "http://127.0.0.1/",
    "http://[::1]/",
    "http://10.0.0.5/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://127.0.0.1./",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",  # mapped 169.254.169.254 in hex
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[2002:a00:5::]/",  # 6to4 of 10.0.0.5
    "http://[::7f00:1]/",  # deprecated IPv4-compatible
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://08.1/",  # looks numeric, is not a valid address
    "file:///etc/passwd",
    "gopher://example.com:70/_x",
    "ftp://example.com/",
    "http://user:pw@example.com/",
    "http://user@example.com/",
    "http://@example.com/",
    "http:///no-host",
    "example.com/no-scheme",
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
    assert check_url(f"http://{PUBLIC_V4}:8080/", resolve=resolve) == [ipaddress.IPv4Address(PUBLIC_V4)]
    assert check_url("http://[64:ff9b::5db8:d822]/", resolve=resolve)
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
        check_url("http://localhost/")  # /etc/hosts: no traffic leaves the machine

"""What the ObjectStore contract cannot say about the s3:// store: its URL, its errors, what a failed write
leaves on the server, and a 1 GiB round trip in bounded memory. Against moto's server on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from framequeue.errors import InvalidParams, ServiceUnavailable, StorageError
from framequeue.storage import open_storage
from tests import s3server
from tests.contract.backends import cleanup
from tests.contract.test_storage import MULTIPART_BYTES, _pattern
from tests.s3server import ACCESS_KEY, BUCKET, SECRET_KEY

GIB = 1024**3
#: the issue's bound on a 1 GiB upload or download
MAX_RSS_GROWTH_MIB = 200


@pytest.fixture
def prefix(moto_server: str) -> Iterator[str]:
    name = f"fq_{uuid.uuid4().hex[:12]}"
    yield name
    cleanup(s3server.store_url(name))


def _server_listing(moto_server: str, query: str) -> str:
    """What the server itself holds (moto answers unsigned requests), past the store's own filters."""
    with urllib.request.urlopen(f"{moto_server}/{BUCKET}?{query}", timeout=10) as resp:
        body: str = resp.read().decode()
        return body


def test_url_names_bucket_prefix_and_key_never_the_credentials(prefix: str) -> None:
    objects = open_storage(s3server.store_url(prefix))
    assert objects.url("outputs/j/a.json") == f"s3://{BUCKET}/{prefix}/outputs/j/a.json"
    assert objects.url("outputs/j/") == f"s3://{BUCKET}/{prefix}/outputs/j/"
    assert SECRET_KEY not in objects.presign("outputs/j/a.json")


def test_credentials_endpoint_and_region_can_come_from_the_standard_variables(
    prefix: str, moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    objects = open_storage(f"s3://{BUCKET}/{prefix}")
    objects.put("inputs/a.bin", b"via the environment")
    assert open_storage(s3server.store_url(prefix)).get("inputs/a.bin") == b"via the environment"
    assert "X-Amz-Credential=" + ACCESS_KEY in objects.presign("inputs/a.bin")


@pytest.mark.parametrize("url", [
    "s3:///prefix", "s3://bucket/p?colour=blue", "s3://bucket/p?timeout_s=soon", "s3://bucket/../up",
])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidParams):
        open_storage(url)


def test_a_missing_bucket_is_a_storage_error_not_a_missing_object(moto_server: str) -> None:
    where = urllib.parse.quote(moto_server, safe="")
    objects = open_storage(f"s3://{ACCESS_KEY}:{SECRET_KEY}@no-such-bucket/p?endpoint={where}")
    with pytest.raises(StorageError, match="no-such-bucket does not exist"):
        objects.put("a", b"x")
    with pytest.raises(StorageError):
        objects.get("a")
    with pytest.raises(StorageError):
        objects.list("")
    # a HEAD answer has no body to tell a missing bucket from a missing object
    assert objects.size("a") is None


def test_an_unreachable_endpoint_is_service_unavailable() -> None:
    objects = open_storage(f"s3://{ACCESS_KEY}:{SECRET_KEY}@{BUCKET}/p?endpoint=http%3A%2F%2F127.0.0.1%3A9")
    with pytest.raises(ServiceUnavailable) as caught:
        objects.size("a")
    assert caught.value.retryable


@pytest.mark.parametrize("create_only", [False, True], ids=["overwrite", "create_only"])
def test_a_failed_write_leaves_no_upload_and_no_staged_object_on_the_server(
    prefix: str, moto_server: str, create_only: bool
) -> None:
    objects = open_storage(s3server.store_url(prefix))
    with pytest.raises(RuntimeError), objects.open_write("outputs/j/big.mp4", create_only=create_only) as fh:
        fh.write(_pattern(MULTIPART_BYTES))
        raise RuntimeError("encoder crashed")
    assert "<Upload>" not in _server_listing(moto_server, f"uploads&prefix={prefix}/")
    assert "<Key>" not in _server_listing(moto_server, f"list-type=2&prefix={prefix}/")


def test_a_committed_create_only_write_leaves_no_staged_object(prefix: str, moto_server: str) -> None:
    objects = open_storage(s3server.store_url(prefix))
    with objects.open_write("outputs/j/big.mp4", create_only=True) as fh:
        fh.write(_pattern(MULTIPART_BYTES))
    keys = re.findall(r"<Key>([^<]+)</Key>", _server_listing(moto_server, f"list-type=2&prefix={prefix}/"))
    assert keys == [f"{prefix}/outputs/j/big.mp4"]
    assert "<Upload>" not in _server_listing(moto_server, f"uploads&prefix={prefix}/")


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("create_only", [False, True], ids=["overwrite", "create_only"])
def test_a_1gib_upload_and_download_run_in_bounded_memory(prefix: str, create_only: bool) -> None:
    """In a child process, so that its peak RSS is the transfer's alone; moto holds the object in its own."""
    args = [sys.executable, "-m", "tests.contract.s3_roundtrip", s3server.store_url(prefix), str(GIB)]
    done = subprocess.run([*args, "--create-only"] if create_only else args,
                          capture_output=True, text=True, timeout=220, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(result)
    assert result["received"] == GIB
    assert result["sha256_down"] == result["sha256_up"]
    assert result["peak_rss_growth_mib"] < MAX_RSS_GROWTH_MIB, result


# (a create-only object over one part is a multipart copy of a staged one, which does not carry the type over)
@pytest.mark.parametrize(("size", "create_only"), [(100, False), (MULTIPART_BYTES, False), (100, True)],
                         ids=["small", "multipart", "create_only"])
def test_objects_are_served_with_their_content_type_and_presigned_gets_take_ranges(
    prefix: str, size: int, create_only: bool
) -> None:
    objects = open_storage(s3server.store_url(prefix))
    data = _pattern(size)
    objects.put("outputs/j/annotated.mp4", data, create_only=create_only)
    objects.put("outputs/j/contact_sheet.png", b"\x89PNG", create_only=create_only)
    url = objects.presign("outputs/j/annotated.mp4", "GET", expires_s=60)
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=10-19"}), timeout=10) as resp:
        assert (resp.status, resp.headers["Content-Type"]) == (206, "video/mp4")
        assert resp.headers["Content-Range"] == f"bytes 10-19/{size}"
        assert resp.read() == data[10:20]
    with urllib.request.urlopen(objects.presign("outputs/j/contact_sheet.png"), timeout=10) as resp:
        assert (resp.headers["Content-Type"], resp.read()) == ("image/png", b"\x89PNG")

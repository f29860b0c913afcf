"""Hostile input through the real gateway: every finding of issue 11's outside clients.

Each bad request gets a 4xx in the JSON error shape naming the field, and leaves
nothing behind (no S3 object, no document row, no lost session turn).
"""

from __future__ import annotations

from typing import Any

import boto3
import grpc
import pytest
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from devstack.launcher import BUCKET
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e
JSON = {"content-type": "application/json"}


def _error(resp: Any, status: int, *words: str) -> dict[str, Any]:
    """Assert the JSON error shape, the status and that `detail` says each word."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) >= {"error", "detail", "reason"} and isinstance(body["detail"], str)
    for word in words:
        assert word in body["detail"], body
    return dict(body)


def _objects(platform: RunningStack) -> list[str]:
    assert platform.stack.moto is not None
    s3 = boto3.client("s3", endpoint_url=platform.stack.moto.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def _multipart(filename: bytes, data: bytes = b"hello there") -> tuple[bytes, dict[str, str]]:
    """A multipart body carrying `filename` byte for byte (httpx would escape it)."""
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="' + filename
            + b'"\r\nContent-Type: text/plain\r\n\r\n' + data + b"\r\n--b0undary--\r\n")
    return body, {"content-type": "multipart/form-data; boundary=b0undary"}


def test_a_nul_filename_is_422_and_stores_nothing(platform: RunningStack) -> None:
    objects, documents = _objects(platform), platform.http.get("/documents").json()
    body, headers = _multipart(b"notes\x00.txt")
    resp = platform.http.post("/upload", content=body, headers=headers)
    _error(resp, 422, "file.filename", "NUL")
    assert _objects(platform) == objects
    assert platform.http.get("/documents").json() == documents


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/query", {"question": "leave\x00days", "mode": "dense"}, "question"),
    ("/query/stream", {"question": "leave\x00days"}, "question"),
    ("/search", {"query": "leave\x00days"}, "query"),
    ("/search", {"query": "x", "filter": {"tags": ["hr\x00"]}}, "filter.tags.0"),
    ("/search", {"query": "x", "filter": {"sources": ["a\x00.txt"]}}, "filter.sources.0"),
])
def test_nul_in_any_text_is_422_naming_the_field(
    platform: RunningStack, path: str, body: dict[str, Any], field: str
) -> None:
    _error(platform.http.post(path, json=body), 422, field, "NUL")


def test_a_nul_question_keeps_the_session_intact(platform: RunningStack) -> None:
    session = platform.http.post("/sessions").json()["session_id"]
    ask = {"question": "how\x00many days", "mode": "dense", "session_id": session}
    _error(platform.http.post("/query", json=ask), 422, "question")
    assert platform.http.get(f"/sessions/{session}").json() == {"session_id": session, "turns": []}


def test_grpc_refuses_nul_with_invalid_argument(platform: RunningStack) -> None:
    port = platform.stack.config.grpc_ports["retrieval"]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
        request = retrieval_pb2.SearchRequest(query="leave", top_k=3)
        request.filter.tags.append("hr\x00")
        with pytest.raises(grpc.RpcError) as err:
            stub.Search(request, timeout=30, metadata=(("x-ragchat-tenant", "default"),))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "filter.tags[0]" in (err.value.details() or "")


@pytest.mark.parametrize(("params", "field"), [
    ({"page_size": "2147483648"}, "page_size"),
    ({"page_size": "ten"}, "page_size"),
    ({"page_token": "not a token!"}, "page_token"),
    ({"page_token": "9" * 5000}, "page_token"),
    ({"page_token": "123456789"}, "page_token"),
])
def test_bad_paging_is_422_json(platform: RunningStack, params: dict[str, str], field: str) -> None:
    _error(platform.http.get("/documents", params=params), 422, field)


@pytest.mark.parametrize(("body", "field"), [
    ({"query": "x", "fitler": {"tags": ["x"]}}, "fitler"),
    ({"query": "x", "filter": {"tag": ["x"]}}, "filter.tag"),
    ({"query": "x", "filter": {"created_before": 0}}, "filter.created_before"),
    ({"query": "x", "filter": {"created_after": "2024-01-01T00:00:00"}}, "filter.created_after"),
    ({"query": "x", "top_k": 0}, "top_k"),
    ({"query": "x", "top_k": 101}, "top_k"),
    ({"query": "x", "min_score": 1e7}, "min_score"),
    ({"query": "x", "min_score": -2}, "min_score"),
    ({"query": "x" * 4001}, "query"),
    ({"query": "x", "filter": {"tags": [str(i) for i in range(101)]}}, "filter.tags"),
    ({"query": "x", "filter": {"document_ids": ["../etc"]}}, "filter.document_ids.0"),
])
def test_unknown_and_out_of_bounds_fields_are_422(
    platform: RunningStack, body: dict[str, Any], field: str
) -> None:
    _error(platform.http.post("/search", json=body), 422, field)


def test_openai_route_refuses_a_misspelt_filter_in_openai_shape(platform: RunningStack) -> None:
    resp = platform.http.post("/v1/chat/completions", json={
        "model": "ragchat-hybrid", "messages": [{"role": "user", "content": "hi"}],
        "filter": {"tag": ["x"]},
    })
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "filter.tag"


@pytest.mark.parametrize(("content", "status"), [
    (b'{"query": "\xff\xfe"}', 400),  # not UTF-8
    (b"[" * 100_000 + b"]" * 100_000, 400),  # nested past the parser's depth
    (b'{"query": ', 422),  # cut short
])
def test_unreadable_bodies_get_the_json_shape(
    platform: RunningStack, content: bytes, status: int
) -> None:
    _error(platform.http.post("/search", content=content, headers=JSON), status)


def test_unknown_route_and_method_get_the_json_shape_and_a_whole_allow(
    platform: RunningStack,
) -> None:
    _error(platform.http.get("/no/such/route"), 404)
    wrong = platform.http.put("/documents/abc")
    _error(wrong, 405)
    assert wrong.headers["allow"] == "DELETE, GET, HEAD"
    options = platform.http.options("/documents/abc")
    assert options.status_code == 204 and options.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"
    v1 = platform.http.put("/v1/models")
    assert v1.status_code == 405 and v1.headers["allow"] == "GET, HEAD" and v1.json()["error"]


@pytest.mark.parametrize(("path", "headers", "content"), [
    ("/search", {"content-type": "text/plain"}, b'{"query": "x"}'),
    ("/query", {"content-type": "application/x-www-form-urlencoded"}, b"question=x"),
    ("/query", {}, b'{"question": "x"}'),
    ("/upload", JSON, b'{"file": "x"}'),
])
def test_wrong_content_type_is_415(
    platform: RunningStack, path: str, headers: dict[str, str], content: bytes
) -> None:
    _error(platform.http.post(path, content=content, headers=headers), 415)


def test_a_broken_multipart_body_gets_the_json_shape(platform: RunningStack) -> None:
    headers = {"content-type": "multipart/form-data; boundary=xx"}
    resp = platform.http.post("/upload", content=b"--xx\r\nno headers, no end", headers=headers)
    assert 400 <= resp.status_code < 500 and resp.json()["detail"]


@pytest.mark.parametrize(("raw", "clean"), [
    (b"../../etc/\x1b[31mpasswd\x1b[0m.txt", "passwd.txt"),
    (b"..\\..\\windows\\boot\x07.md", "boot.md"),
    (b"..", None),
    (b"report" + b"x" * 400 + b".txt", "report" + "x" * 190 + ".txt"),
])
def test_filenames_are_cleaned_before_they_become_title_and_source(
    platform: RunningStack, raw: bytes, clean: str | None
) -> None:
    body, headers = _multipart(raw, b"the filename test " + raw[:8].hex().encode())
    resp = platform.http.post("/upload", content=body, headers=headers)
    if clean is None:
        _error(resp, 422, "file")
        return
    assert resp.status_code == 202, resp.text
    document = platform.http.get(f"/documents/{resp.json()['document_id']}").json()
    assert document["title"] == document["source"] == clean
    assert all(clean in key or "/" not in key.rsplit("/", 1)[-1] for key in _objects(platform))
    platform.wait_job(resp.json()["job_id"])


def test_the_openapi_document_matches_what_is_sent(platform: RunningStack) -> None:
    doc = platform.http.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string"
    assert "HTTPValidationError" not in schemas
    public = {"/health", "/livez"}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            if path.startswith("/admin/"):  # the admin token is not rate limited
                assert {"401", "403", "503"} <= codes, (method, path)
            elif path not in public:
                assert {"401", "403", "429", "503"} <= codes, (method, path)
            if "requestBody" in op:
                assert {"415", "413"} <= codes and codes & {"400", "422"}, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
    stream = doc["paths"]["/query/stream"]["post"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]
    created = schemas["SearchFilterBody"]["properties"]["created_before"]["anyOf"][0]
    assert created["format"] == "date-time"
    assert schemas["SearchFilterBody"]["additionalProperties"] is False


@pytest.mark.parametrize(("name", "data"), [
    ("notes.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00binary"),
    ("page.html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
])
def test_binary_bytes_under_a_text_name_are_415(
    platform: RunningStack, name: str, data: bytes
) -> None:
    objects = _objects(platform)
    _error(platform.upload(name, data), 415, "binary")
    assert _objects(platform) == objects

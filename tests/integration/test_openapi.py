"""GET /openapi.json tells the truth (issue 13, item 1): every route of the app is in it and nothing else,
it is valid OpenAPI 3.1, and every parameter it lists is one the handler accepts while anything else is
refused (400 unknown_parameter)."""

import io
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from speechsvc.api.openapi import ROUTES
from tests.conftest import corpus

STEREO = corpus("stereo_diarization.wav").read_bytes()
SAMPLE = {"integer": "2", "number": "1", "boolean": "false", "string": "x"}


def app_routes(client: TestClient) -> set[tuple[str, str]]:
    found = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or path is None or path.startswith(("/docs/static/", "/live/static/")):
            continue
        found.add((route.method, path))
    return found


async def test_the_document_lists_exactly_the_app_routes_and_is_valid(make_client: Any) -> None:
    client = await make_client()
    document = await (await client.get("/openapi.json")).json()
    validate(document)  # OpenAPI 3.1, by the reference validator
    assert document["openapi"] == "3.1.0"
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert {entry for entry in listed if entry[0] != "HEAD"} == app_routes(client)
    assert document["components"]["securitySchemes"].keys() == {"bearer", "token", "xToken", "xApiKey"}
    poll = document["paths"]["/v1/transcribe/{request_id}"]["get"]
    assert "x-requestid" in next(p for p in poll["parameters"] if p["name"] == "request_id")["description"]


async def call(client: TestClient, method: str, path: str, query: dict[str, str], form: dict[str, str] | None,
               json_body: dict[str, str] | None, audio: bool) -> Any:  # fmt: skip
    path = (
        path.replace("{request_id}", "nojob").replace("{job_id}", "nojob").replace("{upload_id}", "noupload")
    )
    if form is not None:
        data = aiohttp.FormData()
        for name, value in form.items():
            data.add_field(name, value)
        data.add_field("file", io.BytesIO(STEREO), filename="a.wav", content_type="audio/wav")
        return await client.request(method, path, params=query, data=data)
    if json_body is not None:
        return await client.request(method, path, params=query, json=json_body)
    if audio:
        return await client.request(method, path, params=query, data=io.BytesIO(STEREO),
                                    headers={"Content-Type": "audio/wav"})  # fmt: skip
    return await client.request(method, path, params=query)


async def code_of(response: Any) -> str | None:
    if response.status < 400 or response.content_type != "application/json":
        return None
    return str((await response.json())["error"]["code"])


@pytest.mark.parametrize("route", [r for r in ROUTES if r.query or r.form or r.json], ids=lambda r: r.path)
async def test_every_listed_parameter_is_accepted_and_nothing_else(make_client: Any, route: Any) -> None:
    client = await make_client()
    for name, param in {**route.query, **(route.form or {}), **(route.json or {})}.items():
        if name == "file":
            continue
        value = SAMPLE[param.type] if not param.enum else param.enum[0]
        query = {name: value} if name in route.query else {}
        form = (
            {name: value} if route.form is not None and name in route.form else ({} if route.form else None)
        )
        body = (
            {name: value} if route.json is not None and name in route.json else ({} if route.json else None)
        )
        response = await call(client, route.method, route.path, query, form, body, route.audio_body)
        assert await code_of(response) != "unknown_parameter", (route.path, name)
    if route.form is not None:
        response = await call(client, route.method, route.path, {}, {"zz_unknown": "1"}, None, False)
    elif route.json is not None:
        response = await call(client, route.method, route.path, {}, None, {"zz_unknown": "1"}, False)
    else:
        response = await call(
            client, route.method, route.path, {"zz_unknown": "1"}, None, None, route.audio_body
        )
    assert await code_of(response) == "unknown_parameter", route.path

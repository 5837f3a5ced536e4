"""Browser-facing headers (issue 25, finding 10): the html result page, /docs and /live carry a
Content-Security-Policy, X-Content-Type-Options and Cache-Control; /openapi.json never echoes the Host
header."""

import io
from typing import Any

from tests.conftest import corpus

STEREO = corpus("stereo_diarization.wav").read_bytes()


def assert_locked_down(headers: Any) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy and "script-src *" not in policy


async def test_the_html_result_page_and_docs_carry_a_policy(make_client: Any) -> None:
    client = await make_client()
    answer = await client.post(
        "/v1/transcribe",
        data=io.BytesIO(STEREO),
        params={"wait": "30", "format": "html"},
        headers={"Content-Type": "audio/wav"},
    )
    assert answer.status == 200 and answer.content_type == "text/html"
    assert_locked_down(answer.headers)
    assert "script-src" not in answer.headers["Content-Security-Policy"]  # the page runs no script
    docs = await client.get("/docs")
    assert docs.status == 200
    assert_locked_down(docs.headers)
    assert "'sha256-" in docs.headers["Content-Security-Policy"]  # its one inline script, by hash
    live = await client.get("/live")
    assert live.status == 200 and live.content_type == "text/html"
    assert_locked_down(live.headers)
    assert "script-src 'self';" in live.headers["Content-Security-Policy"]  # its scripts are files, no inline
    script = await client.get("/live/static/capture.js")
    assert script.status == 200 and "registerProcessor" in await script.text()
    assert (await client.get("/live/static/live.html")).status == 404
    assert (await client.get("/healthz")).headers["X-Content-Type-Options"] == "nosniff"


async def test_openapi_does_not_echo_the_host_header(make_client: Any) -> None:
    client = await make_client()
    answer = await client.get("/openapi.json", headers={"Host": "evil.example:666"})
    document = await answer.json()
    assert "evil.example" not in await answer.text()
    assert document["servers"] == [{"url": "/"}]

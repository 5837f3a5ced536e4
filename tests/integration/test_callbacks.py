"""The single-attempt completion callback, received by a real HTTP server on loopback."""

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook

from tests.conftest import FIXTURES, corpus
from tests.integration.helpers import poll_until, post_audio
from tests.receiver import CallbackReceiver

ClientFactory = Callable[..., Awaitable[TestClient]]
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def finished(client: TestClient, request_id: str) -> dict[str, Any]:
    await poll_until(client, request_id, {"Completed", "Failed"}, timeout_s=30)
    response = await client.get(f"/v1/transcribe/{request_id}", params={"format": "json"})
    return await response.json() if response.headers["x-status"] == "Completed" else {}


async def test_completed_job_calls_back_once_with_headers_and_body(make_client: Any) -> None:
    client = await make_client()
    with CallbackReceiver() as receiver:
        response = await post_audio(client, corpus("stereo_diarization.wav"), format="json",
                                    callback=receiver.url, userdata="ticket-7")  # fmt: skip
        request_id = response.headers["x-requestid"]
        (call,) = await receiver.arrived(1)
        result = await finished(client, request_id)
        assert len(receiver.requests) == 1
    assert call.path == "/hook"
    assert call.headers["x-requestid"] == request_id
    assert call.headers["x-status"] == "Completed"
    assert call.headers["x-userdata"] == "ticket-7"
    assert "x-error" not in call.headers
    assert call.headers["content-type"].startswith("application/json")
    assert b'"word0.' in call.body and request_id.encode() in call.body
    assert "webhook-signature" not in call.headers
    assert result["callback"]["http_status"] == 200 and result["callback"]["error"] is None
    assert result["callback"]["url"] == receiver.url


async def test_callback_url_from_header_and_xml_body(make_client: Any) -> None:
    client = await make_client()
    with CallbackReceiver() as receiver:
        await client.post("/v1/transcribe", data=corpus("stereo_diarization.wav").read_bytes()[:200000],
                          headers={"Content-Type": "audio/wav", "x-callback-url": receiver.url,
                                   "x-userdata": "h"})  # fmt: skip
        (call,) = await receiver.arrived(1)
    assert call.headers["content-type"].startswith("application/xml")
    assert call.body.startswith(b'<?xml version="1.0"') and b"<recording" in call.body
    assert call.headers["x-userdata"] == "h"


async def test_failed_job_calls_back_with_error(make_client: Any) -> None:
    client = await make_client(max_duration_s=30.0)
    with CallbackReceiver() as receiver:
        # 88 s of audio whose container declares no duration: accepted, then too long when decoded
        response = await post_audio(
            client, FIXTURES / "jfk_x8_streamed.mkv", callback=receiver.url, userdata="u"
        )
        assert response.status == 202
        (call,) = await receiver.arrived(1)
        poll = await poll_until(client, response.headers["x-requestid"], {"Failed"})
    assert call.headers["x-status"] == "Failed"
    assert "longer than the 30 s" in call.headers["x-error"]
    assert call.body.decode() == call.headers["x-error"]
    assert call.headers["content-type"].startswith("text/plain")
    assert poll.status == 200 and poll.headers["x-error"] == call.headers["x-error"]
    assert await poll.text() == call.headers["x-error"]


async def test_error_answer_is_not_retried(make_client: Any) -> None:
    client = await make_client()
    with CallbackReceiver(statuses=[500, 200]) as receiver:
        response = await post_audio(client, corpus("stereo_diarization.wav"), callback=receiver.url)
        result = await finished(client, response.headers["x-requestid"])
        assert len(receiver.requests) == 1
    assert result["callback"]["http_status"] == 500


async def test_redirect_is_not_followed(make_client: Any) -> None:
    client = await make_client()
    with CallbackReceiver() as target, CallbackReceiver(redirect_to=None) as receiver:
        receiver.redirect_to = target.url
        response = await post_audio(client, corpus("stereo_diarization.wav"), callback=receiver.url)
        result = await finished(client, response.headers["x-requestid"])
        assert len(receiver.requests) == 1 and target.requests == []
    assert result["callback"]["http_status"] == 302


async def test_unreachable_receiver_is_recorded(make_client: Any) -> None:
    client = await make_client()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        response = await post_audio(
            client, corpus("stereo_diarization.wav"), callback=f"http://127.0.0.1:{port}/x"
        )
        result = await finished(client, response.headers["x-requestid"])
    assert result["callback"]["http_status"] is None
    assert result["callback"]["error"]
    assert result["status"] == "Completed"


async def test_signed_callback_verifies_with_standardwebhooks(make_client: Any) -> None:
    client = await make_client(webhook_secret=SECRET)
    with CallbackReceiver() as receiver:
        await post_audio(client, corpus("stereo_diarization.wav"), format="json", callback=receiver.url)
        (call,) = await receiver.arrived(1)
    payload = Webhook(SECRET).verify(call.body, call.headers)
    assert payload["status"] == "Completed"
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(call.body + b" ", call.headers)


async def test_every_delivery_carries_a_webhook_id_signed_or_not(make_client: Any) -> None:
    client = await make_client()  # no --webhook-secret
    with CallbackReceiver() as receiver:
        response = await post_audio(client, corpus("stereo_diarization.wav"), callback=receiver.url)
        (call,) = await receiver.arrived(1)
    assert call.headers["webhook-id"] == f"msg_{response.headers['x-requestid']}"
    assert "webhook-signature" not in call.headers and "x-orpheus-signature" not in call.headers

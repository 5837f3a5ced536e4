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


async def test_a_callback_signature_binds_its_job(make_client: Any) -> None:
    """Issue 25, finding 7: two raw callbacks of different jobs with the same txt body carry the same
    X-Orpheus-Signature (seed 000's scheme signs the body alone, and must stay so); the Standard Webhooks
    signature binds the job through webhook-id, and X-Speechsvc-Signature binds the x-* headers."""
    from datetime import datetime, timezone

    from speechsvc.delivery.callbacks import verify_headers

    def standard_ok(body: bytes, headers: dict[str, str]) -> bool:  # Webhook.verify parses JSON; txt is not
        when = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=timezone.utc)
        expected = Webhook(SECRET).sign(headers["webhook-id"], when, body.decode())
        return expected in headers["webhook-signature"].split()

    client = await make_client(webhook_secret=SECRET)
    with CallbackReceiver() as receiver:
        for userdata in ("a", "b"):
            await post_audio(client, corpus("stereo_diarization.wav"), format="txt", callback=receiver.url,
                             userdata=userdata)  # fmt: skip
        first, second = await receiver.arrived(2)
    assert first.body == second.body and first.headers["x-requestid"] != second.headers["x-requestid"]
    assert (
        first.headers["x-orpheus-signature"].split(",")[1]
        == second.headers["x-orpheus-signature"].split(",")[1]
        or first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    )
    for call in (first, second):
        assert standard_ok(call.body, dict(call.headers))
        assert verify_headers(SECRET, dict(call.headers), call.body)
    replayed = {**dict(second.headers), "webhook-id": first.headers["webhook-id"]}
    assert not standard_ok(second.body, replayed)  # the other job's callback, replayed as this one
    swapped = {**dict(first.headers), "x-requestid": second.headers["x-requestid"]}
    assert not verify_headers(SECRET, swapped, first.body)
    assert not verify_headers(SECRET, {**dict(first.headers), "x-userdata": "forged"}, first.body)
    assert not verify_headers(SECRET, {**dict(first.headers), "x-status": "Failed"}, first.body)

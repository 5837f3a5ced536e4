"""POST /v1/listen (issue 20) on the real app with the fake transcriber (one word a second: "word0.",
"word1.", …): Deepgram's answer shape and options, the url body under the address policy, the callback,
and Deepgram's error fields. The official SDK against the real model: tests/acceptance/test_deepgram.py."""

import io
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import corpus
from tests.receiver import CallbackReceiver
from tests.test_hardening.test_rejections import expect_error

JFK = corpus("jfk.flac").read_bytes()  # 11 s: 11 fake words
STEREO = corpus("stereo_diarization.wav").read_bytes()


async def listen(client: TestClient, audio: bytes = JFK, content_type: str = "application/octet-stream",
                 **params: Any) -> Any:  # fmt: skip
    return await client.post("/v1/listen", data=io.BytesIO(audio), params=params,
                             headers={"Content-Type": content_type})  # fmt: skip


async def test_the_answer_in_deepgrams_shape(make_client: Any) -> None:
    client = await make_client()
    response = await listen(client, tag="crm", extra="ticket:42")
    assert response.status == 200, await response.text()
    body = await response.json()
    metadata = body["metadata"]
    assert metadata["request_id"] == response.headers["x-requestid"] and metadata["channels"] == 1
    assert metadata["duration"] == pytest.approx(11.0, abs=0.1) and metadata["created"].endswith("Z")
    assert len(metadata["sha256"]) == 64 and metadata["models"] == list(metadata["model_info"])
    assert metadata["model_info"][metadata["models"][0]]["name"] == "tiny.en"
    assert metadata["tags"] == ["crm"] and metadata["extra"] == {"ticket": "42"}
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert alternative["transcript"].startswith("word0 word1 word2")  # punctuate=false: bare words
    assert alternative["confidence"] == pytest.approx(0.9)
    first = alternative["words"][0]
    assert first == {
        "word": "word0",
        "start": 0.0,
        "end": 1.0,
        "confidence": 0.9,
        "punctuated_word": "word0.",
    }
    assert "utterances" not in body["results"] and "paragraphs" not in alternative


async def test_options_shape_the_answer(make_client: Any) -> None:
    client = await make_client()
    params = {"punctuate": "true", "paragraphs": "true", "utterances": "true", "utt_split": "3",
              "search": "word three", "replace": "word1:hello", "keyterm": "Acme"}  # fmt: skip
    body = await (await listen(client, **params)).json()
    channel = body["results"]["channels"][0]
    alternative = channel["alternatives"][0]
    assert alternative["transcript"].startswith("word0. hello. word2.")
    assert alternative["paragraphs"]["transcript"].startswith("\nword0. hello.")
    assert alternative["paragraphs"]["paragraphs"][0]["sentences"][1]["text"] == "hello."
    utterances = body["results"]["utterances"]
    # the fake's words, kept inside the VAD's speech (speechsvc.results.turns), pause about 1.1 s at most
    assert len(utterances) == 1 and utterances[0]["channel"] == 0
    assert utterances[0]["words"][1]["punctuated_word"] == "hello."
    hits = channel["search"][0]["hits"]
    assert channel["search"][0]["query"] == "word three" and hits[0]["snippet"].startswith("word")
    assert all(0.6 <= hit["confidence"] <= 1 for hit in hits) and hits[0]["end"] > hits[0]["start"]


async def test_channels_merged_unless_multichannel(make_client: Any) -> None:
    client = await make_client()
    merged = await (await listen(client, STEREO, "audio/wav")).json()
    assert merged["metadata"]["channels"] == 1 and len(merged["results"]["channels"]) == 1
    starts = [word["start"] for word in merged["results"]["channels"][0]["alternatives"][0]["words"]]
    assert starts == sorted(starts)
    split = await (await listen(client, STEREO, "audio/wav", multichannel="true", utterances="true")).json()
    assert split["metadata"]["channels"] == 2 and len(split["results"]["channels"]) == 2
    assert {u["channel"] for u in split["results"]["utterances"]} == {0, 1}
    one = await (await listen(client, STEREO, "audio/wav", multichannel="true", channel_layout="1")).json()
    assert one["metadata"]["channels"] == 1


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [({"summarize": "v2"}, "unsupported_value", "summarize"), ({"sentiment": "true"}, "unsupported_value", "sentiment"),
     ({"redact": "cards"}, "invalid_request", "redact"), ({"filler_words": "true"}, "unsupported_value", "filler_words"),
     ({"custom_topic": "billing"}, "unsupported_value", "custom_topic"),
     ({"callback_method": "get"}, "invalid_request", "callback_method"),
     ({"extra": "nocolon"}, "invalid_request", "extra"), ({"model": "gpt-9"}, "model_not_found", "model"),
     ({"utt_split": "-1"}, "invalid_request", "utt_split"), ({"multichanel": "true"}, "unknown_parameter", "multichanel")],
)  # fmt: skip
async def test_refusals_carry_deepgrams_fields(make_client: Any, params: dict[str, str], code: str,
                                               param: str) -> None:  # fmt: skip
    client = await make_client()
    body = await expect_error(await listen(client, **params), 404 if code == "model_not_found" else 400, code)
    assert body["error"]["param"] == param and body["err_msg"] == body["error"]["message"]
    assert body["err_code"] == ("MODEL_NOT_FOUND" if code == "model_not_found" else "Bad Request")
    assert body["request_id"]


async def test_deepgram_model_names_are_the_default_model(make_client: Any) -> None:
    client = await make_client()
    for model in ("nova-3", "nova-2-phonecall", "enhanced", "whisper-large"):
        body = await (await listen(client, model=model, sentiment="false", version="latest")).json()
        assert body["metadata"]["model_info"][body["metadata"]["models"][0]]["name"] == "tiny.en", model


async def test_undecodable_and_unaccepted_bodies(make_client: Any) -> None:
    client = await make_client()
    body = await expect_error(await listen(client, b"not audio at all" * 100), 422, "undecodable_audio")
    assert body["err_code"] == "UNDECODABLE_AUDIO" and body["err_msg"]
    await expect_error(await listen(client, JFK, "text/plain"), 415, "unsupported_media_type")
    await expect_error(await listen(client, b""), 400, "missing_body")


async def file_server(aiohttp_server: Any) -> TestServer:
    async def audio(request: web.Request) -> web.StreamResponse:
        return web.Response(body=JFK, content_type="audio/flac")

    async def hop(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/jfk.flac")

    async def missing(request: web.Request) -> web.StreamResponse:
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/jfk.flac", audio)
    app.router.add_get("/hop", hop)
    app.router.add_get("/missing", missing)
    server: TestServer = await aiohttp_server(app)
    return server


async def test_a_url_is_fetched_only_where_private_addresses_are_allowed(make_client: Any,
                                                                         aiohttp_server: Any) -> None:  # fmt: skip
    server = await file_server(aiohttp_server)
    url = f"http://127.0.0.1:{server.port}"
    refused = await make_client()
    body = await expect_error(
        await refused.post("/v1/listen", json={"url": f"{url}/jfk.flac"}), 400, "invalid_url"
    )
    assert "private or loopback" in body["err_msg"]
    await expect_error(
        await refused.post("/v1/listen", json={"url": "http://169.254.169.254/x"}), 400, "invalid_url"
    )
    allowed = await make_client(fetch_allow_private=True, max_upload_bytes=len(JFK) + 10)
    response = await allowed.post("/v1/listen", json={"url": f"{url}/hop"}, params={"punctuate": "true"})
    assert response.status == 200, await response.text()
    assert (await response.json())["results"]["channels"][0]["alternatives"][0]["transcript"].startswith(
        "word0."
    )
    await expect_error(
        await allowed.post("/v1/listen", json={"url": f"{url}/missing"}), 400, "url_fetch_failed"
    )
    await expect_error(
        await allowed.post("/v1/listen", json={"url": "ftp://example.com/a"}), 400, "invalid_url"
    )
    await expect_error(await allowed.post("/v1/listen", json={"url": f"{url}/jfk.flac", "x": 1}), 400,
                       "unknown_parameter")  # fmt: skip
    small = await make_client(fetch_allow_private=True, max_upload_bytes=1000)
    await expect_error(await small.post("/v1/listen", json={"url": f"{url}/jfk.flac"}), 413, "file_too_large")


async def test_the_callback_gets_the_answer_once_by_put(make_client: Any) -> None:
    client = await make_client()
    with CallbackReceiver() as receiver:
        response = await listen(client, callback=receiver.url, callback_method="put", utterances="true")
        assert response.status == 200
        request_id = (await response.json())["request_id"]
        (delivered,) = await receiver.arrived(1)
    assert delivered.method == "PUT" and delivered.headers["content-type"] == "application/json"
    answer = json.loads(delivered.body)
    assert answer["metadata"]["request_id"] == request_id and answer["results"]["utterances"]
    assert delivered.headers["webhook-id"].startswith("msg_")


def test_the_options_survive_the_store(tmp_path: Path) -> None:
    from speechsvc.results.deepgram import DeepgramOptions

    options = DeepgramOptions(replace=(("a", "b"),), extra=(("k", "v"),), search=("x",), tags=("t",))
    assert DeepgramOptions.from_json(json.loads(json.dumps(options.to_json()))) == options

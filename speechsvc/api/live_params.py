"""The live query (Deepgram's streaming parameters) onto a LiveOptions, and with save=true the job the call
becomes; every 400 before the upgrade, naming the parameter."""

from __future__ import annotations

import dataclasses

from multidict import MultiMapping

from speechsvc import diarize
from speechsvc.api.deepgram_params import (
    deepgram_language,
    deepgram_model,
    deepgram_options,
    deepgram_redaction,
    hotwords,
)
from speechsvc.api.deepgram_params import refuse_unsupported as refuse_prerecorded
from speechsvc.api.params import parse_bool, parse_int
from speechsvc.api.spec import DEEPGRAM_LIVE, check_known
from speechsvc.asr.engine import SAMPLE_RATE_HZ, TranscribeOptions
from speechsvc.asr.models import ModelRegistry
from speechsvc.config import Config
from speechsvc.errors import DiarizationUnavailable, InvalidRequest, UnsupportedValue
from speechsvc.jobs.model import JobRequest
from speechsvc.live.pcm import MAX_CHANNELS, RAW_ENCODINGS
from speechsvc.live.session import DEFAULT_PAUSE_MS, LiveOptions
from speechsvc.results.formats import FormatSpec
from speechsvc.service.facade import build_job_request

MAX_ENDPOINTING_MS = 10_000
MAX_UTTERANCE_END_MS = 10_000
SAMPLE_RATES = (8000, 384_000)


def _endpointing(query: MultiMapping[str]) -> int | None:
    raw = (query.get("endpointing") or "").strip().lower()
    if raw in ("false", "off"):
        return None
    if raw in ("", "true"):
        return DEFAULT_PAUSE_MS
    return parse_int(query, "endpointing", DEFAULT_PAUSE_MS, 0, MAX_ENDPOINTING_MS)


def _diarize(query: MultiMapping[str], channels: int) -> bool:
    if not (parse_bool(query, "diarize", False) or (query.get("diarize_model") or "").strip()):
        return False
    if channels > 1:
        raise UnsupportedValue("diarize is for a mono stream (channels=1): with several channels send one party "
                               "per channel with multichannel=true", param="diarize")  # fmt: skip
    if not diarize.available():
        raise DiarizationUnavailable(f"speaker diarization is not installed on this server: {diarize.INSTALL_HINT}",
                                     param="diarize")  # fmt: skip
    return True


def live_options(registry: ModelRegistry, query: MultiMapping[str]) -> tuple[LiveOptions, str]:
    """The stream's options and its model's name; 400 for anything unknown or wrong."""
    check_known(query.keys(), DEEPGRAM_LIVE, "query parameter")
    refuse_prerecorded(query)
    redaction = deepgram_redaction(query)
    if redaction is not None and redaction.audio is not None and not parse_bool(query, "save", False):
        raise InvalidRequest("redact_audio needs save=true on a live stream: the redacted copy is the saved "
                             "call's", param="redact_audio")  # fmt: skip
    encoding = (query.get("encoding") or "").strip().lower() or None
    if encoding is not None and encoding not in RAW_ENCODINGS:
        raise UnsupportedValue(f"encoding must be one of {', '.join(RAW_ENCODINGS)}, or none for containerised "
                               "audio (Ogg/WebM Opus, WAV, …)", param="encoding")  # fmt: skip
    if encoding is not None and not query.get("sample_rate"):
        raise InvalidRequest(f"encoding={encoding} needs sample_rate", param="sample_rate")
    sample_rate = parse_int(query, "sample_rate", SAMPLE_RATE_HZ, *SAMPLE_RATES)
    channels = parse_int(query, "channels", 1, 1, MAX_CHANNELS)
    utterance_end = (
        parse_int(query, "utterance_end_ms", 0, 0, MAX_UTTERANCE_END_MS)
        if query.get("utterance_end_ms")
        else None
    )
    spec = registry.spec_for_request(deepgram_model(registry, query.get("model")))  # 404 model_not_found
    language = deepgram_language(query)
    if spec.multilingual is False:
        if language not in (None, "en"):
            raise UnsupportedValue(f"model {spec.name} is English-only", param="language")
        language = "en"
    options = LiveOptions(
        encoding=encoding,
        sample_rate=sample_rate,
        channels=channels,
        multichannel=parse_bool(query, "multichannel", False),
        interim_results=parse_bool(query, "interim_results", False),
        endpointing_ms=_endpointing(query),
        utterance_end_ms=utterance_end,
        vad_events=parse_bool(query, "vad_events", False),
        diarize=_diarize(query, channels),
        decoder=TranscribeOptions(language=language, hotwords=hotwords(query)),
        redaction=redaction,
    )
    return options, spec.name


def saved_call(
    registry: ModelRegistry, config: Config, query: MultiMapping[str], x_request_id: str
) -> JobRequest | None:
    """save=true: the job the call becomes when it ends (the answer in Deepgram's shape, per channel, to the
    callback if given); None without save."""
    if not parse_bool(query, "save", False):
        if query.get("callback"):
            raise InvalidRequest("callback needs save=true on a live stream", param="callback")
        return None
    job = build_job_request(
        registry, config, model=deepgram_model(registry, query.get("model")), layout=None, labels=None,
        language=deepgram_language(query), task="transcribe",
        options=TranscribeOptions(hotwords=hotwords(query)), format=FormatSpec("json"),
        callback_url=query.get("callback") or None, userdata=None,
    )  # fmt: skip
    shape = dataclasses.replace(deepgram_options(query), multichannel=True, utterances=True)
    return dataclasses.replace(
        job, x_request_id=x_request_id, dialect="deepgram", dialect_options=shape.to_json(),
        redaction=deepgram_redaction(query),
    )  # fmt: skip

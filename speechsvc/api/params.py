"""Parsing of request fields shared by the dialects: booleans, bounded numbers, the option set."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from speechsvc import diarize
from speechsvc.asr.engine import TranscribeOptions
from speechsvc.diarize.clustering import DEFAULT_MAX_SPEAKERS, SpeakerCount
from speechsvc.errors import DiarizationUnavailable, InvalidRequest, UnsupportedValue
from speechsvc.redact import Redaction, parse_redaction

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
BEAM_SIZE_RANGE = (1, 10)


def parse_bool(fields: Mapping[str, str], name: str, default: bool) -> bool:
    raw = fields.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise InvalidRequest(f"{name} must be true or false", param=name)


def parse_number(fields: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = fields.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number from {low:g} to {high:g}", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be a number from {low:g} to {high:g}", param=name)
    return value


def parse_int(fields: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = parse_number(fields, name, default, low, high)
    if value != int(value):
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}", param=name)
    return int(value)


SPEAKERS_RANGE = (1, 32)


def parse_crosstalk(fields: Mapping[str, str]) -> str:
    """`crosstalk`: auto (default) or off."""
    crosstalk = (fields.get("crosstalk") or "auto").strip().lower()
    if crosstalk not in ("off", "auto"):
        raise InvalidRequest("crosstalk must be auto or off", param="crosstalk")
    return crosstalk


def parse_speakers(fields: Mapping[str, str], *, implied: bool = False) -> SpeakerCount | None:
    """`diarize`, `num_speakers`, `min_speakers`, `max_speakers` (API.md §1): None without diarization.
    The counts are checked either way (seed 001's own example sends diarize=false with num_speakers, so
    they alone do not turn diarization on); `implied`: the response format asks for speakers."""
    exact, low, high = (
        parse_int(fields, name, 0, *SPEAKERS_RANGE) or None
        for name in ("num_speakers", "min_speakers", "max_speakers")
    )
    if low is not None and high is not None and low > high:
        raise InvalidRequest("min_speakers must not be more than max_speakers", param="min_speakers")
    if exact is not None and not (low or 1) <= exact <= (high or SPEAKERS_RANGE[1]):
        raise InvalidRequest(
            "num_speakers must lie within min_speakers and max_speakers", param="num_speakers"
        )
    wanted = parse_bool(fields, "diarize", implied)
    if implied and not wanted:
        raise InvalidRequest("this response format needs diarize=true", param="diarize")
    if not wanted:
        return None
    if not diarize.available():
        raise DiarizationUnavailable(f"speaker diarization is not installed on this server: {diarize.INSTALL_HINT}",
                                     param="diarize")  # fmt: skip
    if exact is not None:
        return SpeakerCount(exact=exact, low=exact, high=exact)
    low = low or 1
    return SpeakerCount(low=low, high=high or max(low, DEFAULT_MAX_SPEAKERS))


def parse_redact(values: Iterable[str], fields: Mapping[str, str]) -> Redaction | None:
    """`redact` (every value given: repeated, comma-separated), `redact_sub`, `redact_audio`."""
    return parse_redaction(values, fields.get("redact_sub"), fields.get("redact_audio"))


def parse_redact_json(body: Mapping[str, Any]) -> Redaction | None:
    """The same from a JSON body: `redact` a string or a list of strings, `redact_audio` also a boolean."""
    given = body.get("redact")
    values = given if isinstance(given, list) else [] if given is None else [given]
    if not all(isinstance(value, str) for value in values):
        raise InvalidRequest("redact must be a string or a list of strings", param="redact")
    fields = {
        name: str(body[name]).lower() for name in ("redact_sub", "redact_audio") if body.get(name) is not None
    }
    return parse_redact(values, fields)


def check_unsupported(fields: Mapping[str, str]) -> None:
    """Parameters of the contract this server cannot honour are a 400, never silently ignored:
    stream=true, a chunking strategy other than auto, character timestamps."""
    parse_crosstalk(fields)
    if parse_bool(fields, "stream", False):
        raise UnsupportedValue("streamed transcripts are not available: send stream=false", param="stream")
    if (fields.get("chunking_strategy") or "auto").strip().lower() != "auto":
        raise UnsupportedValue("only chunking_strategy=auto: audio is always cut by voice activity",
                               param="chunking_strategy")  # fmt: skip
    if (fields.get("timestamps_granularity") or "word").strip().lower() not in ("word", "none"):
        raise UnsupportedValue("timestamps_granularity must be word or none", param="timestamps_granularity")


def decoder_options(fields: Mapping[str, str]) -> TranscribeOptions:
    """word_timestamps, vad, beam_size, prompt, hotwords, temperature (language and task come later)."""
    temperature = fields.get("temperature")
    return TranscribeOptions(
        word_timestamps=parse_bool(fields, "word_timestamps", True),
        vad=parse_bool(fields, "vad", True),
        beam_size=parse_int(fields, "beam_size", 5, *BEAM_SIZE_RANGE),
        prompt=fields.get("prompt") or None,
        hotwords=fields.get("hotwords") or None,
        temperature=parse_number(fields, "temperature", 0.0, 0.0, 1.0) if temperature else None,
    )

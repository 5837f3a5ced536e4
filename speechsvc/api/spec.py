"""The parameters each endpoint accepts, in one place: the handlers refuse anything else (400
unknown_parameter, naming it) and GET /openapi.json is built from the same tables, so the two cannot
drift apart."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from speechsvc.errors import InvalidRequest


class UnknownParameter(InvalidRequest):
    """The request names a parameter this endpoint does not have."""

    code = "unknown_parameter"


@dataclass(frozen=True)
class Param:
    description: str
    type: str = "string"  # an OpenAPI type: string, integer, number, boolean
    enum: tuple[str, ...] = ()


_DECODER = {
    "language": Param("ISO-639-1 code or `auto` (per-channel detection); `en` on English-only models"),
    "model": Param("a model from GET /v1/models; default: the server's --model"),
    "task": Param(
        "transcribe, or translate to English (multilingual models)", enum=("transcribe", "translate")
    ),
    "vad": Param("skip non-speech before decoding (default true)", "boolean"),
    "beam_size": Param("beam width, 1-10 (default 5)", "integer"),
    "prompt": Param("text that conditions the decoder (vocabulary, names), at most 2000 characters"),
    "hotwords": Param("words to favour, at most 2000 characters"),
    "temperature": Param("sampling temperature 0-1 (default: 0 with fallback)", "number"),
}
_CHANNELS = {
    "channel_layout": Param(
        "[stream].channel[,…], zero-based: which channels to transcribe, each on its own"
    ),
    "channel_labels": Param("comma list naming the selected channels in order, e.g. agent,customer"),
}
_SPEAKERS = {
    "diarize": Param(
        "true: split each channel by speaker (spk_0, spk_1, … on segments and words); 400 "
        "diarization_unavailable where the speechsvc[diarize] extra is not installed",
        "boolean",
    ),
    "num_speakers": Param(
        "with diarize=true: the exact number of speakers, 1-32 (default: estimated)", "integer"
    ),
    "min_speakers": Param("with diarize=true: at least this many speakers, 1-32 (default 1)", "integer"),
    "max_speakers": Param("with diarize=true: at most this many speakers, 1-32 (default 8)", "integer"),
}
SPEAKER_FIELDS = tuple(_SPEAKERS)
CROSSTALK = {
    "crosstalk": Param(
        "auto (default): a channel's delayed, attenuated copy of another (echo, bleed) is not "
        "transcribed on the copy's channel; off: every channel as it is",
        enum=("auto", "off"),
    ),
}
REDACT = {
    "redact": Param("pci, ssn, numbers or pii, comma-separated or repeated: taken out of the result before it "
                    "is stored (markers such as [CREDIT_CARD], `redactions` lists the spans, `not_redacted` the "
                    "types this server cannot find: person names without the names extra); README Redaction"),
    "redact_sub": Param("with redact: marker (default) or mask (****)", enum=("marker", "mask")),
    "redact_audio": Param("with redact: true (= beep) or silence keeps a redacted copy of the selected "
                          "channels, GET /v1/transcribe/{id}/audio", enum=("false", "true", "beep", "silence")),
}  # fmt: skip
RETAIN = Param("false: delete the job and its result once delivered (callback attempted, or first 200 GET)",
               "boolean")  # fmt: skip
FORMAT = Param(
    "xml (default), json, srt, vtt, txt, html; srt/vtt take controls: srt,max_lines:2,line_char_limit:32"
)

RAW_SUBMIT = {
    **_CHANNELS,
    **_DECODER,
    "callback": Param("URL for the single-attempt completion callback (also header x-callback-url)"),
    "userdata": Param("opaque printable ASCII, at most 4 KiB, returned as x-userdata (also a header)"),
    "format": FORMAT,
    "word_timestamps": Param("word times and confidences (default true)", "boolean"),
    "wait": Param(
        "seconds (0-300) to hold the request: 200 with the result if it finishes in time", "number"
    ),
    "retain": RETAIN,
    **_SPEAKERS,
    **CROSSTALK,
    **REDACT,
}
RAW_POLL = {"format": FORMAT}
RAW_AUDIO = {"format": Param("wav (default), flac, mp3 or opus (mp3, opus: at most 2 channels)",
                             enum=("wav", "flac", "mp3", "opus"))}  # fmt: skip

OPENAI_FORM = {
    "file": Param("the audio file", "string"),
    "model": Param("whisper-1 (the server's default) or a model from GET /v1/models"),
    "language": _DECODER["language"],
    "prompt": _DECODER["prompt"],
    "hotwords": _DECODER["hotwords"],
    "temperature": _DECODER["temperature"],
    "vad": _DECODER["vad"],
    "beam_size": _DECODER["beam_size"],
    "response_format": Param(
        "json, text, srt, verbose_json, vtt, or diarized_json (speakers A, B, …; implies diarize=true)",
        enum=("json", "text", "srt", "verbose_json", "vtt", "diarized_json"),
    ),
    "timestamp_granularities[]": Param("word and/or segment (verbose_json)"),
    "timestamp_granularities": Param("comma list: word, segment"),
    "timestamps_granularity": Param("seed 001: none or word (character: 400)", enum=("none", "word")),
    "stream": Param("only false: streamed transcripts are not available (true: 400)", "boolean"),
    "chunking_strategy": Param(
        "only auto: the server always cuts the audio by voice activity", enum=("auto",)
    ),
    "enable_logging": Param(
        "seed 001: false = zero retention, nothing of the request outlives the answer", "boolean"
    ),
    **_CHANNELS,
    **_SPEAKERS,
    **CROSSTALK,
    **REDACT,
}
# Fields of the OpenAI and seed 001 shapes that are accepted and ignored, with the reason (README).
OPENAI_IGNORED = {
    "tag_audio_events": "seed 001 sends it (default true); Whisper writes no audio-event tags, and "
    "refusing it would break every seed 001 client, so it has no effect",
    "orq": "seed 001's gateway routing (fallbacks, retries, cache); there is no gateway in front of one "
    "self-hosted model",
    "user": "OpenAI's end-user id for abuse monitoring; the API key identifies the caller here",
}
JOBS_FORM = {**OPENAI_FORM, "callback_url": Param("URL for the signed, retried webhook"), "retain": RETAIN}

JOBS_QUERY = {"task": Param("transcribe (default) or translate", enum=("transcribe", "translate"))}
AUDIO_JOB = {
    "upload_id": Param("a completed upload"),
    **_CHANNELS,
    **{name: _DECODER[name] for name in ("language", "model", "task", "vad", "beam_size", "prompt")},
    "format": FORMAT,
    "callback_url": Param("URL for the signed, retried webhook"),
    "retain": RETAIN,
    **CROSSTALK,
    **_SPEAKERS,
    **REDACT,
}
_LLM = "needs a language model: not supported (true or any value: 400 unsupported_value)"
_UNHONOURED = "not supported: true is 400 unsupported_value; false is accepted"
DEEPGRAM_LISTEN = {
    "model": Param("Deepgram's names (nova-3, nova-2, nova, enhanced, whisper-…, with any -variant) are the "
                   "server's default model; a model from GET /v1/models (tiny.en, base, …) is that model"),
    "version": Param("only latest: each model has one version here", enum=("latest",)),
    "language": Param("BCP-47 tag, of which the language is used (en-US -> en); multi: detect; default en"),
    "detect_language": Param("true: detect the language of each channel (detected_language)", "boolean"),
    "multichannel": Param("true: each channel transcribed and answered on its own; false (default): every "
                          "channel is transcribed on its own and their words merged in time order into one "
                          "channel (not an audio mix)", "boolean"),
    "diarize": Param("true: integer speakers on words, utterances and paragraphs (needs speechsvc[diarize])",
                     "boolean"),
    "diarize_model": Param("any value turns diarization on (there is one diarizer here)"),
    "punctuate": Param("true: transcripts with punctuation and capitals (punctuated_word); false (default): "
                       "the bare lower-case words, as Deepgram", "boolean"),
    "smart_format": Param("true: as punctuate=true (Whisper writes numerals, dates and currency already)",
                          "boolean"),
    "numerals": Param("accepted: Whisper writes numbers as numerals already; no other change", "boolean"),
    "paragraphs": Param("true: alternatives[0].paragraphs (implies punctuate)", "boolean"),
    "utterances": Param("true: results.utterances", "boolean"),
    "utt_split": Param("seconds of pause that end an utterance, 0-60 (default 0.8)", "number"),
    "keyterm": Param("a term to favour (repeatable): passed to the decoder as hotwords"),
    "keywords": Param("word[:intensifier] (repeatable): the word passed to the decoder as hotwords; the "
                      "intensifier has no equivalent and is dropped"),
    "search": Param("a term or phrase to find (repeatable): results.channels[i].search[].hits"),
    "replace": Param("find:replacement (repeatable); find alone removes the term"),
    "profanity_filter": Param("true: profane words masked (f***)", "boolean"),
    "tag": Param("a label (repeatable), echoed in metadata.tags"),
    "extra": Param("key:value (repeatable), echoed in metadata.extra"),
    "callback": Param("URL: answer at once with {request_id}; the result is delivered there (signed, "
                      "retried webhook, the answer itself as the body)"),
    "callback_method": Param("post (default) or put", enum=("post", "put", "POST", "PUT")),
    "encoding": Param("accepted: the container's own header (or magic bytes) decides how audio is read"),
    "sample_rate": Param("accepted, as encoding", "integer"),
    "channels": Param("accepted, as encoding", "integer"),
    "mip_opt_out": Param("accepted: nothing leaves a self-hosted server", "boolean"),
    "filler_words": Param(_UNHONOURED, "boolean"),
    "dictation": Param(_UNHONOURED, "boolean"),
    "measurements": Param(_UNHONOURED, "boolean"),
    "language_hint": Param("not supported: 400 unsupported_value"),
    "redact": Param("pci, ssn, numbers or pii (true = pci), repeated or comma-separated: taken out of the "
                    "result before it is stored; README Redaction"),
    "redact_sub": REDACT["redact_sub"],
    "redact_audio": REDACT["redact_audio"],
    **{name: Param(_LLM) for name in ("summarize", "sentiment", "topics", "intents", "detect_entities",
                                      "custom_topic", "custom_topic_mode", "custom_intent",
                                      "custom_intent_mode")},
    "channel_layout": _CHANNELS["channel_layout"],
    **{name: _SPEAKERS[name] for name in ("num_speakers", "min_speakers", "max_speakers")},
    **CROSSTALK,
}  # fmt: skip
_LIVE_SHARED = (
    "model",
    "version",
    "language",
    "multichannel",
    "punctuate",
    "smart_format",
    "numerals",
    "keyterm",
    "keywords",
    "profanity_filter",
    "replace",
    "tag",
    "extra",
    "callback",
    "callback_method",
    "mip_opt_out",
    "filler_words",
    "dictation",
    "measurements",
    "language_hint",
    "redact",
    "diarize",
    "diarize_model",
    "summarize",
    "sentiment",
    "topics",
    "intents",
    "detect_entities",
    "custom_topic",
    "custom_topic_mode",
    "custom_intent",
    "custom_intent_mode",
    "detect_language",
)
DEEPGRAM_LIVE = {
    **{name: DEEPGRAM_LISTEN[name] for name in _LIVE_SHARED},
    "multichannel": Param("true: each channel its own party, channel_index [c, n]; false (default): every channel "
                          "decoded on its own, all reported as channel [0, 1]", "boolean"),
    "diarize": Param("true on a mono stream (channels=1): a speaker on every word of the finals, matched online "
                     "utterance by utterance (needs speechsvc[diarize]); with several channels a 400", "boolean"),
    "redact": Param("pci, ssn, numbers or pii (true = pci), repeated or comma-separated: finals redacted before "
                    "they are sent (one ending in an open number waits for the next, at most 8 s); interims "
                    "redacted, or held back while a number may be open; README Redaction"),
    "redact_sub": REDACT["redact_sub"],
    "redact_audio": Param("with redact and save=true: the saved call keeps a redacted copy of its audio (true = "
                          "beep, or silence); without save a 400"),
    "callback": Param("with save=true: the saved call's answer is delivered there when the stream ends"),
    "encoding": Param("linear16, mulaw or alaw (raw PCM, with sample_rate); none: containerised audio (Ogg/WebM "
                      "Opus, WAV, …) decoded as it arrives", enum=("linear16", "mulaw", "alaw")),
    "sample_rate": Param("Hz of raw PCM, 8000-384000 (needed with encoding)", "integer"),
    "channels": Param("channels of raw PCM, interleaved, 1-8 (default 1)", "integer"),
    "interim_results": Param("true: the open utterance re-decoded about once a second (is_final false)", "boolean"),
    "endpointing": Param("ms of silence that end an utterance (speech_final true), 0-10000, default 300; false: "
                         "utterances still end at pauses, never speech_final"),
    "utterance_end_ms": Param("ms without words after the last word: an UtteranceEnd message", "integer"),
    "vad_events": Param("true: a SpeechStarted message when a channel starts speaking", "boolean"),
    "save": Param("true: the call is kept as a job under its request_id when the stream ends (the whole call per "
                  "channel, transcribed as a file; GET /v1/transcribe/{request_id})", "boolean"),
}  # fmt: skip
DEEPGRAM_URL = {"url": Param("an http(s) URL of the audio, fetched by the server (the callback address "
                             "policy; loopback and private addresses only with --fetch-allow-private)")}  # fmt: skip
UPLOAD_CREATE = {
    "file_name": Param("the file's name, 1-255 characters"),
    "mime_type": Param("an accepted audio or video type, e.g. audio/wav"),
    "size_bytes": Param("the whole file's size; every PUT is checked against it", "integer"),
}
UPLOAD_CONTENT = {"token": Param("the upload URL's token: it alone authorises the PUT")}
UPLOAD_COMPLETE = {"sha256": Param("hex SHA-256 of the whole file, checked if given")}


def check_known(given: Iterable[str], known: Mapping[str, Param], where: str,
                ignored: Mapping[str, str] | None = None) -> None:  # fmt: skip
    """400 unknown_parameter for the first name that is neither known nor knowingly ignored."""
    for name in given:
        if name in known or (ignored is not None and name in ignored):
            continue
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownParameter(f"unknown {where} {name[:100]!r}{hint}", param=name[:100])

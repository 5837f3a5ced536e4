"""Deepgram's query parameters onto what speechsvc does (README, "The Deepgram API"): the model, the
language, the hotwords, the options that shape the answer, and a 400 for what cannot be honoured."""

from __future__ import annotations

import re

from multidict import MultiMapping

from speechsvc.api.params import FALSE_WORDS, parse_bool, parse_number, parse_redact
from speechsvc.asr.models import ModelRegistry
from speechsvc.errors import InvalidRequest, UnsupportedValue
from speechsvc.redact import Redaction
from speechsvc.results.deepgram import DEFAULT_UTT_SPLIT_S, DeepgramOptions

# Deepgram's model families, with any variant (nova-3-medical, nova-2-phonecall, enhanced-general, …).
DEEPGRAM_MODELS = re.compile(r"(nova(-[0-9]+)?|enhanced|base|whisper)(-[a-z0-9._-]+)?", re.ASCII)
LANGUAGE_MODEL_FEATURES = ("summarize", "sentiment", "topics", "intents", "detect_entities")
LANGUAGE_MODEL_FIELDS = ("custom_topic", "custom_topic_mode", "custom_intent", "custom_intent_mode")
UNHONOURED = ("filler_words", "dictation", "measurements")
MAX_UTT_SPLIT_S = 60.0


def refuse_unsupported(query: MultiMapping[str]) -> None:
    """400 unsupported_value for what needs a language model, and the formatting switches
    Whisper cannot turn on."""
    for name in LANGUAGE_MODEL_FEATURES:
        if (query.get(name) or "false").strip().lower() not in FALSE_WORDS:
            raise UnsupportedValue(
                f"{name} needs a language model; speechsvc does not support it", param=name
            )
    for name in LANGUAGE_MODEL_FIELDS:
        if name in query:
            raise UnsupportedValue(
                f"{name} needs a language model; speechsvc does not support it", param=name
            )
    if "language_hint" in query:
        raise UnsupportedValue("language_hint is not supported: send language, or detect_language=true",
                               param="language_hint")  # fmt: skip
    for name in UNHONOURED:
        if parse_bool(query, name, False):
            raise UnsupportedValue(f"{name}=true is not supported by speechsvc's decoder", param=name)
    if (query.get("version") or "latest").strip().lower() != "latest":
        raise UnsupportedValue("only version=latest: each model has one version here", param="version")


def deepgram_model(registry: ModelRegistry, name: str | None) -> str | None:
    """A model the server serves by its own name; Deepgram's names are the default model (None)."""
    name = (name or "").strip()
    if not name or name in {str(entry["id"]) for entry in registry.listing()}:
        return name or None
    return None if DEEPGRAM_MODELS.fullmatch(name.lower()) else name  # an unknown name: 404 later


def deepgram_language(query: MultiMapping[str]) -> str | None:
    """`language` as a BCP-47 tag (en-US -> en; default en, as Deepgram); None: detect (multi, or
    detect_language=true)."""
    if parse_bool(query, "detect_language", False):
        return None
    tag = (query.get("language") or "en").strip().lower()
    return None if tag == "multi" else tag.replace("_", "-").split("-")[0]


def hotwords(query: MultiMapping[str]) -> str | None:
    """keyterm and keywords (without their intensifier) as the decoder's hotwords."""
    terms = [term.strip() for term in query.getall("keyterm", [])]
    terms += [keyword.rsplit(":", 1)[0].strip() for keyword in query.getall("keywords", [])]
    terms = [term for term in terms if term]
    return ", ".join(dict.fromkeys(terms)) or None


def _pairs(query: MultiMapping[str], name: str, *, required: bool) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in query.getall(name, []):
        key, colon, rest = value.partition(":")
        if not key.strip() or (required and not colon):
            raise InvalidRequest(f"{name} must look like key:value", param=name)
        pairs.append((key.strip(), rest.strip()))
    return tuple(pairs)


def deepgram_options(query: MultiMapping[str]) -> DeepgramOptions:
    """The options that shape the answer (kept with the job for a later callback)."""
    method = (query.get("callback_method") or "post").strip().upper()
    if method not in ("POST", "PUT"):
        raise InvalidRequest("callback_method must be post or put", param="callback_method")
    paragraphs = parse_bool(query, "paragraphs", False)
    punctuate = parse_bool(query, "punctuate", False) or parse_bool(query, "smart_format", False)
    parse_bool(query, "numerals", False)  # checked, and nothing to change: Whisper writes numerals
    parse_bool(query, "mip_opt_out", False)
    return DeepgramOptions(
        multichannel=parse_bool(query, "multichannel", False),
        punctuate=punctuate or paragraphs,
        paragraphs=paragraphs,
        utterances=parse_bool(query, "utterances", False),
        utt_split_s=parse_number(query, "utt_split", DEFAULT_UTT_SPLIT_S, 0.0, MAX_UTT_SPLIT_S),
        diarize=wants_diarization(query),
        detect_language=parse_bool(query, "detect_language", False) or query.get("language") == "multi",
        profanity_filter=parse_bool(query, "profanity_filter", False),
        replace=_pairs(query, "replace", required=False),
        search=tuple(term for term in query.getall("search", []) if term.strip()),
        tags=tuple(query.getall("tag", [])),
        extra=_pairs(query, "extra", required=True),
        callback_method=method,
    )


def wants_diarization(query: MultiMapping[str]) -> bool:
    return parse_bool(query, "diarize", False) or bool((query.get("diarize_model") or "").strip())


def deepgram_redaction(query: MultiMapping[str]) -> Redaction | None:
    """`redact=pci&redact=ssn` (repeated or comma-separated) as speechsvc's redaction (speechsvc.redact);
    Deepgram's legacy `redact=true` means pci. `redact_sub` and `redact_audio` are speechsvc's extensions."""
    values = [
        "pci" if value.strip().lower() == "true" else value
        for given in query.getall("redact", [])
        for value in given.split(",")
    ]
    return parse_redact(values, query)

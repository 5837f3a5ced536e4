"""The OpenAI audio API's response shapes (json, text, srt, verbose_json, vtt, and diarized_json, the shape of
its diarizing model), rendered from the canonical result. With several channels, `text` and `segments`
follow the merged timeline and each segment carries our extension fields `speaker`, `stream` and `channel`;
with diarization, `speaker` is the speaker (`spk_0`, or `agent/spk_0` with several channels)."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from speechsvc.errors import InvalidRequest
from speechsvc.results.canonical import Result, speaker_name
from speechsvc.results.formats import FormatSpec
from speechsvc.results.render import render

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
GRANULARITIES = ("word", "segment")

# Whisper's language names, which OpenAI reports in verbose_json ("english", not "en").
LANGUAGE_NAMES = dict(
    pair.split(":")
    for pair in [
        "en:english",
        "zh:chinese",
        "de:german",
        "es:spanish",
        "ru:russian",
        "ko:korean",
        "fr:french",
        "ja:japanese",
        "pt:portuguese",
        "tr:turkish",
        "pl:polish",
        "ca:catalan",
        "nl:dutch",
        "ar:arabic",
        "sv:swedish",
        "it:italian",
        "id:indonesian",
        "hi:hindi",
        "fi:finnish",
        "vi:vietnamese",
        "he:hebrew",
        "uk:ukrainian",
        "el:greek",
        "ms:malay",
        "cs:czech",
        "ro:romanian",
        "da:danish",
        "hu:hungarian",
        "ta:tamil",
        "no:norwegian",
        "th:thai",
        "ur:urdu",
        "hr:croatian",
        "bg:bulgarian",
        "lt:lithuanian",
        "la:latin",
        "mi:maori",
        "ml:malayalam",
        "cy:welsh",
        "sk:slovak",
        "te:telugu",
        "fa:persian",
        "lv:latvian",
        "bn:bengali",
        "sr:serbian",
        "az:azerbaijani",
        "sl:slovenian",
        "kn:kannada",
        "et:estonian",
        "mk:macedonian",
        "br:breton",
        "eu:basque",
        "is:icelandic",
        "hy:armenian",
        "ne:nepali",
        "mn:mongolian",
        "bs:bosnian",
        "kk:kazakh",
        "sq:albanian",
        "sw:swahili",
        "gl:galician",
        "mr:marathi",
        "pa:punjabi",
        "si:sinhala",
        "km:khmer",
        "sn:shona",
        "yo:yoruba",
        "so:somali",
        "af:afrikaans",
        "oc:occitan",
        "ka:georgian",
        "be:belarusian",
        "tg:tajik",
        "sd:sindhi",
        "gu:gujarati",
        "am:amharic",
        "yi:yiddish",
        "lo:lao",
        "uz:uzbek",
        "fo:faroese",
        "ht:haitian_creole",
        "ps:pashto",
        "tk:turkmen",
        "nn:nynorsk",
        "mt:maltese",
        "sa:sanskrit",
        "lb:luxembourgish",
        "my:myanmar",
        "bo:tibetan",
        "tl:tagalog",
        "mg:malagasy",
        "as:assamese",
        "tt:tatar",
        "haw:hawaiian",
        "ln:lingala",
        "ha:hausa",
        "ba:bashkir",
        "jw:javanese",
        "su:sundanese",
        "yue:cantonese",
    ]
)


def parse_response_format(value: str | None) -> str:
    name = (value or "json").strip().lower()
    if name not in RESPONSE_FORMATS:
        raise InvalidRequest(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}", param="response_format"
        )
    return name


def parse_granularities(values: Collection[str]) -> tuple[str, ...]:
    for value in values:
        if value not in GRANULARITIES:
            raise InvalidRequest(
                "timestamp_granularities[] must be word or segment", param="timestamp_granularities[]"
            )
    return tuple(values) or ("segment",)


def _segments(result: Result) -> list[dict[str, Any]]:
    multi = len(result["channels"]) > 1
    pairs = [(doc, seg) for doc in result["channels"] for seg in doc["segments"]]
    pairs.sort(key=lambda pair: (pair[1]["start"], pair[0]["stream"], pair[0]["channel"]))
    segments = []
    for number, (doc, seg) in enumerate(pairs):
        segment = {
            "id": number,
            "seek": seg.get("seek", 0),
            "start": seg["start"],
            "end": seg["end"],
            "text": (" " + seg["text"]) if seg["text"] else "",
            "tokens": seg.get("tokens", []),
            "temperature": seg.get("temperature", 0.0),
            "avg_logprob": seg.get("avg_logprob", 0.0),
            "compression_ratio": seg.get("compression_ratio", 0.0),
            "no_speech_prob": seg.get("no_speech_prob", 0.0),
        }
        if multi:
            segment |= {"stream": doc["stream"], "channel": doc["channel"]}
        if (speaker := speaker_name(doc, seg, multi=multi)) is not None:
            segment["speaker"] = speaker
        segments.append(segment)
    return segments


def _words(result: Result) -> list[dict[str, Any]]:
    multi = len(result["channels"]) > 1
    words = []
    for doc in result["channels"]:
        for seg in doc["segments"]:
            for word in seg["words"]:
                entry = {"word": word["word"].strip(), "start": word["start"], "end": word["end"]}
                if (speaker := speaker_name(doc, word, multi=multi)) is not None:
                    entry["speaker"] = speaker
                words.append(entry)
    words.sort(key=lambda w: (w["start"], w["end"]))
    return words


def render_openai(
    result: Result, response_format: str, granularities: Collection[str], task: str
) -> tuple[str, str]:
    """(body, content type) in the OpenAI shape."""
    if response_format == "text":
        return render(result, FormatSpec("txt")), "text/plain"
    if response_format in ("srt", "vtt"):
        return render(result, FormatSpec(response_format)), "text/plain"
    usage = {"type": "duration", "seconds": round(float(result["duration_s"]))}
    if response_format == "diarized_json":
        return json.dumps(diarized(result) | {"usage": usage}, ensure_ascii=False), "application/json"
    if response_format == "json":
        return json.dumps({"text": result["text"], "usage": usage}, ensure_ascii=False), "application/json"
    languages = [doc["language"] for doc in result["channels"]]
    code = "en" if task == "translate" else (languages[0] if languages else "en")
    body: dict[str, Any] = {
        "task": task,
        "language": LANGUAGE_NAMES.get(code, code),
        "duration": result["duration_s"],
        "text": result["text"],
        "usage": usage,
    }
    if "segment" in granularities:
        body["segments"] = _segments(result)
    if "word" in granularities:
        body["words"] = _words(result)
    return json.dumps(body, ensure_ascii=False), "application/json"


def _letters(number: int) -> str:
    """A, B, …, Z, AA, AB, …: OpenAI's speaker names."""
    name = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def diarized(result: Result) -> dict[str, Any]:
    """OpenAI's diarized_json (TranscriptionDiarized): segments typed transcript.text.segment, each with its
    speaker as a letter in order of first appearance (on several channels, each channel's speakers are
    speakers of their own)."""
    multi = len(result["channels"]) > 1
    pairs = [(doc, seg) for doc in result["channels"] for seg in doc["segments"] if seg["text"]]
    pairs.sort(key=lambda pair: (pair[1]["start"], pair[0]["stream"], pair[0]["channel"]))
    letters: dict[str, str] = {}
    segments = []
    for number, (doc, seg) in enumerate(pairs):
        who = speaker_name(doc, seg, multi=multi) or str(doc["label"])
        segments.append({
            "type": "transcript.text.segment",
            "id": f"seg_{number}",
            "start": seg["start"],
            "end": seg["end"],
            "text": seg["text"],
            "speaker": letters.setdefault(who, _letters(len(letters))),
        })  # fmt: skip
    return {
        "task": "transcribe",
        "duration": result["duration_s"],
        "text": " ".join(segment["text"] for segment in segments),
        "segments": segments,
    }

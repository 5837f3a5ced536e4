"""Deepgram's pre-recorded response (ListenV1Response of the official deepgram-sdk), rendered from the
canonical result: `metadata`, and `results.channels[i].alternatives[0]` with transcript, confidence and
words, plus `paragraphs`, `search` and `results.utterances` when asked for.

Without `multichannel` Deepgram mixes the channels into one. speechsvc does not mix the audio: it
transcribes every channel on its own (cross-talk suppressed) and merges their words in time order into the
one channel of the answer, so on a stereo call nobody talks over anybody in the decoder (a downmixed call
can read as nonsense where each channel reads clean). A word heard on two channels at once (a dual-mono
file, the same recording on both) is kept once."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from speechsvc.results.canonical import Result
from speechsvc.results.deepgram_words import DgWord, bare, filter_profanity, replace_words, search
from speechsvc.results.render import _timed_words

DEFAULT_UTT_SPLIT_S = 0.8  # Deepgram's default pause between utterances
PARAGRAPH_GAP_S = 2.0  # a pause this long starts a new paragraph
SENTENCE_ENDS = (".", "?", "!", "…")
ECHO_S = 0.5  # merging channels: the same word on two channels this close together is one word
ECHO_LOOKBACK = 8  # words back (in time order) where such a twin may be
MODEL_NAMESPACE = uuid.UUID("6f1d3c1e-2a52-4c1b-9a0e-5d2a3c4b5e6f")  # model uuids stay the same per name


@dataclass(frozen=True)
class DeepgramOptions:
    """What shapes the answer, kept with the job (JobRequest.dialect_options) for a later callback."""

    multichannel: bool = False
    punctuate: bool = False
    paragraphs: bool = False
    utterances: bool = False
    utt_split_s: float = DEFAULT_UTT_SPLIT_S
    diarize: bool = False
    detect_language: bool = False
    profanity_filter: bool = False
    replace: tuple[tuple[str, str], ...] = ()
    search: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    callback_method: str = "POST"
    sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeepgramOptions:
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("replace", "extra"):
                values[name] = tuple(tuple(pair) for pair in value)
            elif name in cls.__dataclass_fields__:
                values[name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


def model_uuid(name: str) -> str:
    return str(uuid.uuid5(MODEL_NAMESPACE, name))


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _speaker_number(name: Any) -> int | None:
    """spk_3 -> 3; None when the word has no speaker (no diarization)."""
    return None if name is None else int(str(name).rsplit("_", 1)[-1])


def _channel_words(result: Result, index: int) -> list[DgWord]:
    """The words of canonical channel `index` (a segment without word times: its tokens, timed evenly)."""
    words = []
    for seg in result["channels"][index]["segments"]:
        for word in _timed_words(seg):
            text = word["word"].strip()
            if text:
                speaker = _speaker_number(word.get("speaker") or seg.get("speaker"))
                words.append(DgWord(bare(text) or text.lower(), text, float(word["start"]),
                                    float(word["end"]), float(word["confidence"]), index, speaker))  # fmt: skip
    return words


def deepgram_channels(result: Result, multichannel: bool) -> list[list[DgWord]]:
    """The answer's channels: each canonical channel with `multichannel`, else all merged into one (the
    speakers of several channels numbered anew, in order of first appearance)."""
    count = len(result["channels"])
    if multichannel or count == 1:
        return [_channel_words(result, index) for index in range(count)]
    merged = [word for index in range(count) for word in _channel_words(result, index)]
    merged.sort(key=lambda w: (w.start, w.end, w.channel))
    numbers: dict[tuple[int, int], int] = {}
    kept: list[DgWord] = []
    for word in merged:
        if _echo(word, kept[-ECHO_LOOKBACK:]):
            continue
        if word.speaker is not None:
            word = dataclasses.replace(
                word, speaker=numbers.setdefault((word.channel, word.speaker), len(numbers))
            )
        kept.append(word)
    return [kept]


def _echo(word: DgWord, before: Sequence[DgWord]) -> bool:
    """Is the word heard on another channel at the same moment (the same recording on both channels of a
    dual-mono file, or bleed cross-talk suppression left)? Merged, it is one word."""
    return any(
        other.channel != word.channel and other.word == word.word and abs(other.start - word.start) <= ECHO_S
        for other in before
    )


def _text(words: Sequence[DgWord], punctuate: bool) -> str:
    return " ".join(w.punctuated if punctuate else w.word for w in words)


def _confidence(words: Sequence[DgWord]) -> float:
    return round(sum(w.confidence for w in words) / len(words), 4) if words else 0.0


def _runs(words: Sequence[DgWord], gap_s: float) -> list[list[DgWord]]:
    """Words cut into runs at a change of voice or a pause of `gap_s` or more."""
    runs: list[list[DgWord]] = []
    for word in words:
        if runs and word.voice == runs[-1][-1].voice and word.start - runs[-1][-1].end < gap_s:
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def _sentences(words: Sequence[DgWord]) -> list[dict[str, Any]]:
    sentences: list[list[DgWord]] = [[]]
    for word in words:
        sentences[-1].append(word)
        if word.punctuated.endswith(SENTENCE_ENDS):
            sentences.append([])
    return [{"text": _text(s, True), "start": round(s[0].start, 3), "end": round(s[-1].end, 3)}
            for s in sentences if s]  # fmt: skip


def paragraphs(words: Sequence[DgWord], diarized: bool) -> dict[str, Any]:
    """Deepgram's `paragraphs`: runs of one voice without a long pause, cut into sentences."""
    found = []
    for run in _runs(words, PARAGRAPH_GAP_S):
        paragraph: dict[str, Any] = {"sentences": _sentences(run), "num_words": len(run),
                                     "start": round(run[0].start, 3), "end": round(run[-1].end, 3)}  # fmt: skip
        if diarized and run[0].speaker is not None:
            paragraph["speaker"] = run[0].speaker
        found.append(paragraph)
    texts = [
        (f"Speaker {p['speaker']}: " if "speaker" in p else "") + " ".join(s["text"] for s in p["sentences"])
        for p in found
    ]
    return {"transcript": "\n" + "\n\n".join(texts), "paragraphs": found}


def utterances(channels: Sequence[Sequence[DgWord]], options: DeepgramOptions, request_id: str) -> list[Any]:
    """Deepgram's `utterances`: each channel's words cut at a pause of `utt_split` or a change of voice."""
    found = []
    for number, words in enumerate(channels):
        for run in _runs(words, options.utt_split_s):
            utterance: dict[str, Any] = {
                "start": round(run[0].start, 3), "end": round(run[-1].end, 3),
                "confidence": _confidence(run), "channel": number,
                "transcript": _text(run, options.punctuate),
                "words": [w.to_json(with_speaker=options.diarize) for w in run],
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request_id}/{number}/{run[0].start}")),
            }  # fmt: skip
            if options.diarize and run[0].speaker is not None:
                utterance["speaker"] = run[0].speaker
            found.append(utterance)
    found.sort(key=lambda u: (u["start"], u["channel"]))
    return found


def render_deepgram(
    result: Result, options: DeepgramOptions, *, request_id: str, created_at: float, model: str
) -> dict[str, Any]:
    """The finished job's answer in Deepgram's shape."""
    channels = []
    for words in deepgram_channels(result, options.multichannel):
        if options.replace:
            words = replace_words(words, options.replace)
        if options.profanity_filter:
            words = filter_profanity(words)
        channels.append(words)
    docs = []
    for number, words in enumerate(channels):
        alternative: dict[str, Any] = {
            "transcript": _text(words, options.punctuate),
            "confidence": _confidence(words),
            "words": [w.to_json(with_speaker=options.diarize) for w in words],
        }
        if options.paragraphs:
            alternative["paragraphs"] = paragraphs(words, options.diarize)
        doc: dict[str, Any] = {"alternatives": [alternative]}
        if options.search:
            doc["search"] = search(words, options.search)
        if options.detect_language:
            source = result["channels"][number if options.multichannel else 0]
            doc["detected_language"] = source["language"]
            doc["language_confidence"] = round(float(source["language_probability"]), 4)
        docs.append(doc)
    uid = model_uuid(model)
    metadata: dict[str, Any] = {
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": options.sha256,
        "created": _iso(created_at),
        "duration": round(float(result["duration_s"]), 3),
        "channels": len(docs),
        "models": [uid],
        "model_info": {uid: {"name": model, "version": "speechsvc", "arch": "whisper"}},
    }
    if options.tags:
        metadata["tags"] = list(options.tags)
    if options.extra:
        metadata["extra"] = dict(options.extra)
    results: dict[str, Any] = {"channels": docs}
    if options.utterances:
        results["utterances"] = utterances(channels, options, request_id)
    return {"metadata": metadata, "results": results}

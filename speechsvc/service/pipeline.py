"""The transcription pipeline, blocking, for a worker thread or the offline CLI:
probe -> select channels -> decode -> transcribe each channel on its own -> canonical result."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from speechsvc import diarize
from speechsvc.asr import coverage
from speechsvc.asr.engine import (
    SAMPLE_RATE_HZ,
    ChannelBatching,
    ChannelTranscript,
    TranscribeOptions,
    Transcriber,
)
from speechsvc.asr.pieces import PIECE_S, Regions, joined, pieces, speech_regions
from speechsvc.asr.scheduler import FairPool
from speechsvc.asr.short_window import decode_short, window_frames
from speechsvc.audio import crosstalk, isolate
from speechsvc.audio.decode import BYTES_PER_SAMPLE
from speechsvc.audio.layout import SelectedChannel, resolve_selection
from speechsvc.errors import AudioTooLong, DecodedTooLarge, JobCanceled, UndecodableAudio
from speechsvc.jobs.model import JobRequest
from speechsvc.redact.apply import redact_result
from speechsvc.redact.audio import write_redacted
from speechsvc.redact.reading import read
from speechsvc.redact.second_pass import Redecode, Words, listen_again
from speechsvc.results import turns
from speechsvc.results.canonical import Result, build_result, drop_words

log = logging.getLogger(__name__)
Samples = npt.NDArray[np.float32]

# Called with the share (0-100) of the selected audio transcribed so far; raises JobCanceled to stop.
ProgressSink = Callable[[float], None]


# The second listen of redaction (speechsvc.redact.second_pass): each clip alone in a short window
# (speechsvc.asr.short_window: the clip + 1 s, in steps of 2 s), English, no prompt, greedy, no fallback.
# bench_redact.py on the tuning seeds 1 and 2: the recall of a 30 s window with a prompt of digits (the
# last release's), at a fifth of its cost; live's window (+5 s in steps of 10 s), the same at 1.4x; the
# clip + 2 s in steps of 5 s (the last release's), the same recall (e-mail 0.8 against 1.0 on seed 1) at
# 1.13-1.15x (a loop is bounded by ShortWindow's tokens per second, so the tight window no longer loops on).
SECOND_PASS: dict[str, Any] = {
    "language": "en", "prompt": None, "vad": False, "beam_size": 1, "hotwords": None, "temperature": 0.0,
}  # fmt: skip
SECOND_PASS_MARGIN_S = 1.0
SECOND_PASS_STEP_S = 2.0


def select_channels(
    path: Path,
    media_type: str,
    request: JobRequest,
    *,
    max_channels: int,
    max_duration_s: float,
    limits: isolate.DecodeLimits,
    max_decoded_bytes: int | None = None,
) -> tuple[SelectedChannel, ...]:
    """Probe the file and resolve the request's layout and labels against it (the submit-time check).

    A duration the container declares is checked here; decoding checks the samples themselves, for
    files that declare none (live recorders) or declare too little.
    """
    info = isolate.probe(path, media_type, max_channels=max_channels, limits=limits)
    declared = [s.duration_s for s in info.streams if s.duration_s is not None]
    if info.duration_s is not None:
        declared.append(info.duration_s)
    if declared and max(declared) > max_duration_s:
        raise AudioTooLong(
            f"the audio lasts {max(declared):.1f} s; this server accepts at most {max_duration_s:g} s"
        )
    selection = resolve_selection(request.layout, request.labels, info.stream_channels)
    if not selection:
        raise UndecodableAudio("the file has no decodable audio channel")
    for selected in selection:
        if not info.streams[selected.ref.stream].decodable:
            raise UndecodableAudio(f"audio stream {selected.ref.stream} could not be decoded")
    if declared and max_decoded_bytes is not None:
        decoded = max(declared) * SAMPLE_RATE_HZ * BYTES_PER_SAMPLE * len(selection)
        if decoded > max_decoded_bytes:
            raise DecodedTooLarge(
                f"{len(selection)} channel(s) of {max(declared):.1f} s decode to {decoded:.0f} bytes; one job "
                f"may use at most {max_decoded_bytes} (select fewer channels with channel_layout)"
            )
    return selection


def run_pipeline(
    request_id: str,
    path: Path,
    media_type: str,
    request: JobRequest,
    transcriber: Transcriber,
    *,
    max_duration_s: float,
    max_channels: int,
    limits: isolate.DecodeLimits,
    max_decoded_bytes: int | None = None,
    scratch_dir: Path,
    on_progress: ProgressSink,
    pool: FairPool | None = None,
    piece_s: float = PIECE_S,
    redacted_audio: Path | None = None,
    second_listen: bool = True,
) -> Result:
    """Transcribe every selected channel of the file on its own and build the canonical result, redacted
    if the request asks (then with `redacted_audio`, the redacted copy of the channels is written there;
    `second_listen`: where a number is likely, the audio is decoded again, speechsvc.redact.second_pass)."""
    selection = select_channels(
        path,
        media_type,
        request,
        max_channels=max_channels,
        max_duration_s=max_duration_s,
        limits=limits,
        max_decoded_bytes=max_decoded_bytes,
    )

    def check_canceled() -> None:  # the sink raises JobCanceled when the job was deleted
        on_progress(0.0)

    channels = isolate.decode_channels(
        path,
        media_type,
        [s.ref for s in selection],
        max_duration_s=max_duration_s,
        scratch_dir=scratch_dir,
        limits=limits,
        should_stop=check_canceled,
        max_decoded_bytes=max_decoded_bytes,
    )
    analyse = request.crosstalk == "auto" and len(channels) > 1
    leaks = crosstalk.estimate(channels, isolate.release_pages) if analyse else []
    decoded = channels  # as they were: the redacted copy of the audio is made from these
    channels = crosstalk.suppress(channels, leaks)
    # words always: segments are timed and cut by them (speechsvc.results.turns), coverage counts them, and
    # diarization cuts at speaker changes between them; left out of the result unless asked for
    options = dataclasses.replace(request.options, word_timestamps=True)
    # who speaks when, beside the decoder (it does not need the transcript): on two cores the decoder of
    # one job leaves most of a core idle
    beside = _SpeakersBeside(channels, request.speakers) if request.speakers is not None else None

    def decode(
        clips: list[Samples],
        clip_options: TranscribeOptions,
        sink: ProgressSink,
        regions: list[Regions] | None = None,
    ) -> list[ChannelTranscript]:
        if isinstance(transcriber, ChannelBatching):  # batched with other jobs' channels
            done_s = [0.0] * len(clips)
            total_s = sum(len(samples) for samples in clips) / SAMPLE_RATE_HZ or 1.0

            def batched_progress(position: int, at_s: float) -> None:
                done_s[position] = at_s
                sink(100.0 * sum(done_s) / total_s)

            return transcriber.transcribe_channels(request_id, clips, clip_options, batched_progress, regions)
        return _transcribe_in_pieces(
            request_id, clips, clip_options, transcriber, pool, sink, piece_s, regions
        )

    try:
        transcripts = _transcribe(channels, options, decode, check_canceled, on_progress, leaks)
        if beside is not None:
            transcripts = [
                diarize.label_transcript(t, spans, keep_words=True)
                for t, spans in zip(transcripts, beside.result(), strict=True)
            ]
    finally:
        if beside is not None:
            beside.stop()
    report = _crosstalk_report(selection, leaks) if analyse else None
    result = build_result(
        request_id, transcriber.name, list(zip(selection, transcripts, strict=True)), report
    )
    if request.redaction is not None:  # before anything stores the result, while its words are in it
        reading = read(result, request.redaction)
        heard = []
        if second_listen:
            redecode = second_listen_decoder(transcriber, f"{request_id}/again", options, check_canceled)
            heard = listen_again(reading, channels, redecode)
        result = redact_result(result, reading, heard)
        if request.redaction.audio is not None and redacted_audio is not None:
            check_canceled()
            write_redacted(decoded, result, request.redaction.audio, redacted_audio)
    return result if request.options.word_timestamps else drop_words(result)


def second_listen_decoder(
    transcriber: Transcriber, job_key: str, options: TranscribeOptions, check_canceled: Callable[[], None]
) -> Redecode:
    """How redaction's second listen decodes its clips (speechsvc.redact.second_pass): one by one, each in
    a short window with SECOND_PASS's settings."""
    again = dataclasses.replace(options, **SECOND_PASS)

    def redecode(clips: list[Samples]) -> list[Words]:
        seconds = sum(len(clip) for clip in clips) / SAMPLE_RATE_HZ
        log.info("event=second_listen clips=%d seconds=%.1f", len(clips), seconds)
        out = []
        for number, clip in enumerate(clips):
            check_canceled()
            frames = window_frames(len(clip) / SAMPLE_RATE_HZ, SECOND_PASS_MARGIN_S, SECOND_PASS_STEP_S)
            found = decode_short(transcriber, job_key, number, clip, again, frames)
            out.append([(w.start, w.end, w.word) for seg in found.segments for w in seg.words])
        return out

    return redecode


class Decode(Protocol):
    """Decode channels; told where each one's speech is, the decoder cuts it into pieces there."""

    def __call__(
        self,
        clips: list[Samples],
        options: TranscribeOptions,
        sink: ProgressSink,
        regions: list[Regions] | None = None,
        /,
    ) -> list[ChannelTranscript]: ...


def _transcribe(
    channels: list[Samples],
    options: TranscribeOptions,
    decode: Decode,
    check_canceled: Callable[[], None],
    on_progress: ProgressSink,
    leaks: list[crosstalk.Leak],
) -> list[ChannelTranscript]:
    """Every channel decoded, its speech covered, echoes dropped and cut into turns."""
    regions = []  # the VAD reads each channel once: where to cut a long one into pieces, and what coverage checks
    for samples in channels:
        check_canceled()
        regions.append(speech_regions(samples))
        isolate.release_pages(samples)
    speech = [coverage.speech_stretches(found) for found in regions]
    transcripts = decode(channels, options, on_progress, regions)
    transcripts = _covered(channels, speech, transcripts, options, decode, check_canceled)
    return turns.cut_turns(_drop_echoes(transcripts, leaks), speech)


class _SpeakersBeside:
    """Who speaks when on each channel, worked out on a thread of its own while the decoder runs (numpy
    and onnxruntime let go of the GIL). stop() makes it end after the block of speech it is on (at most
    ten minutes of a channel's speech: about 20 s of this machine's CPU), and waits."""

    def __init__(self, channels: list[Samples], count: diarize.SpeakerCount) -> None:
        self._stopping = threading.Event()
        self._spans: list[list[diarize.Span]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(channels, count), name="diarize", daemon=True)
        self._thread.start()

    def _run(self, channels: list[Samples], count: diarize.SpeakerCount) -> None:
        try:
            for samples in channels:
                if self._stopping.is_set():
                    return
                self._spans.append(diarize.speaker_turns(samples, count, self._stopping.is_set))
        except BaseException as error:  # handed to the job's thread by result()
            self._error = error

    def result(self) -> list[list[diarize.Span]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._spans

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def _covered(
    channels: list[Samples],
    speech: list[list[coverage.Stretch]],
    transcripts: list[ChannelTranscript],
    options: TranscribeOptions,
    decode: Decode,
    check_canceled: Callable[[], None],
) -> list[ChannelTranscript]:
    """Every stretch of VAD speech left without words decoded again on its own (no previous text, no
    prompt, the library's own fallback), then what is still missing reported (speechsvc.asr.coverage)."""
    wanted = [
        (position, max(0.0, start - coverage.REDECODE_PAD_S), end + coverage.REDECODE_PAD_S)
        for position, (stretches, transcript) in enumerate(zip(speech, transcripts, strict=True))
        for start, end in coverage.uncovered(stretches, transcript.segments)
    ]
    if wanted:
        log.info("event=redecode stretches=%d seconds=%.1f", len(wanted), sum(b - a for _, a, b in wanted))
    out = list(transcripts)
    languages = {options.language or out[position].language for position, _, _ in wanted}
    for language in sorted(languages):  # a multilingual model keeps each channel's language
        batch = [w for w in wanted if (options.language or out[w[0]].language) == language]
        clips = [
            np.array(channels[p][round(a * SAMPLE_RATE_HZ) : round(b * SAMPLE_RATE_HZ)]) for p, a, b in batch
        ]
        alone = dataclasses.replace(options, language=language, prompt=None, vad=False)
        for (position, start, _), found in zip(
            batch, decode(clips, alone, lambda _: check_canceled()), strict=True
        ):
            out[position] = coverage.with_redecoded(out[position], [(start, found)])
    return [coverage.report(transcript, stretches) for transcript, stretches in zip(out, speech, strict=True)]


ECHO_SIMILARITY = 0.8  # word-level guard: a segment this like the source's, in a leak-dominated span


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w' ]+", " ", text.lower()).split()


def _drop_echoes(
    transcripts: list[ChannelTranscript], leaks: list[crosstalk.Leak]
) -> list[ChannelTranscript]:
    """The second line of defence: a segment on B that overlaps in time a segment on A with nearly the same
    words, where the audio test found B's span dominated by A's copy, is dropped. Never on text alone: a
    person may really repeat what the other said (then B's own voice is there, and the span is not leak)."""
    out = list(transcripts)
    for leak in leaks:
        delay_s = leak.delay / SAMPLE_RATE_HZ
        source = out[leak.source].segments
        kept = []
        for segment in out[leak.target].segments:
            echoed = (
                any(
                    min(segment.end, other.end + delay_s) > max(segment.start, other.start + delay_s)
                    and difflib.SequenceMatcher(None, _words(segment.text), _words(other.text)).ratio()
                    >= ECHO_SIMILARITY
                    for other in source
                )
                and crosstalk.leak_share([leak], leak.target, segment.start, segment.end) >= 0.5
            )
            if not echoed:
                kept.append(segment)
        out[leak.target] = dataclasses.replace(out[leak.target], segments=kept)
    return out


def _crosstalk_report(selection: tuple[SelectedChannel, ...], leaks: list[crosstalk.Leak]) -> dict[str, Any]:
    """API.md §2b: what was found and what was done."""
    return {
        "applied": bool(leaks),
        "leaks": [
            {"from": selection[leak.source].label, "to": selection[leak.target].label,
             "delay_ms": round(leak.delay * 1000 / SAMPLE_RATE_HZ, 1), "gain_db": round(leak.gain_db, 1)}
            for leak in leaks
        ],
        "suppressed_s": {
            selection[target].label: crosstalk.muted_seconds(leaks, target)
            for target in sorted({leak.target for leak in leaks})
        },
    }  # fmt: skip


def _transcribe_in_pieces(
    request_id: str,
    channels: list[npt.NDArray[np.float32]],
    options: TranscribeOptions,
    transcriber: Transcriber,
    pool: FairPool | None,
    on_progress: ProgressSink,
    piece_s: float,
    speech: list[Regions] | None = None,
) -> list[ChannelTranscript]:
    """The sequential decoder: every channel at the same time on the shared engine slots, each channel a
    chain of pieces (speechsvc.asr.pieces; cut at `speech`, each channel's speech regions, when given)
    queued one after the other, so that other jobs' tasks get a slot between two pieces of a long call."""
    total_s = sum(len(samples) for samples in channels) / SAMPLE_RATE_HZ or 1.0
    done_s = [0.0] * len(channels)
    plans = []
    for position, samples in enumerate(channels):
        plans.append(pieces(samples, piece_s, None if speech is None else speech[position]))
        isolate.release_pages(samples)  # where the VAD ran here, it read the whole channel: its pages can go
    parts: list[list[tuple[float, ChannelTranscript]]] = [[] for _ in channels]

    def piece_task(position: int, number: int, piece_options: TranscribeOptions) -> ChannelTranscript:
        start, end = plans[position][number]

        def piece_progress(at_s: float) -> None:
            done_s[position] = start / SAMPLE_RATE_HZ + at_s
            on_progress(100.0 * sum(done_s) / total_s)

        transcript = transcriber.transcribe(channels[position][start:end], piece_options, piece_progress)
        isolate.release_pages(channels[position])
        piece_progress((end - start) / SAMPLE_RATE_HZ)
        return transcript

    def submit(position: int, number: int, piece_options: TranscribeOptions) -> Future[ChannelTranscript]:
        task = functools.partial(piece_task, position, number, piece_options)
        if pool is not None:
            return pool.submit(request_id, task)
        future: Future[ChannelTranscript] = Future()  # no pool: run it here and now
        try:
            future.set_result(task())
        except Exception as exc:
            future.set_exception(exc)
        return future

    pending = {submit(position, 0, options): (position, 0) for position in range(len(channels))}
    try:
        while pending:
            finished, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            if not finished:
                on_progress(0.0)  # no news; a deleted job stops waiting here (the sink raises JobCanceled)
            for future in finished:
                position, number = pending.pop(future)
                if future.cancelled():
                    raise JobCanceled()  # the pool was closed: the service is shutting down
                transcript = future.result()  # raises the task's error
                parts[position].append((plans[position][number][0] / SAMPLE_RATE_HZ, transcript))
                if number + 1 < len(plans[position]):
                    following = dataclasses.replace(
                        options,
                        language=options.language
                        or (parts[position][0][1].language if transcriber.multilingual else None),
                    )
                    pending[submit(position, number + 1, following)] = (position, number + 1)
    finally:
        for future in pending:
            future.cancel()
    return [joined(channel_parts) for channel_parts in parts]

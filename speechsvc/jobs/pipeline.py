"""The transcription pipeline, blocking, for a worker thread or the offline CLI:
probe -> select channels -> decode -> transcribe each channel on its own -> canonical result."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import wait
from pathlib import Path

from speechsvc.asr.engine import SAMPLE_RATE_HZ, ChannelTranscript, Transcriber
from speechsvc.asr.scheduler import FairPool
from speechsvc.audio import isolate
from speechsvc.audio.layout import SelectedChannel, resolve_selection
from speechsvc.errors import AudioTooLong, JobCanceled, UndecodableAudio
from speechsvc.jobs.model import JobRequest
from speechsvc.results.canonical import Result, build_result

# Called with the share (0-100) of the selected audio transcribed so far; raises JobCanceled to stop.
ProgressSink = Callable[[float], None]


def select_channels(
    path: Path,
    media_type: str,
    request: JobRequest,
    *,
    max_channels: int,
    max_duration_s: float,
    limits: isolate.DecodeLimits,
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
    scratch_dir: Path,
    on_progress: ProgressSink,
    pool: FairPool | None = None,
) -> Result:
    """Transcribe every selected channel of the file on its own and build the canonical result."""
    selection = select_channels(
        path, media_type, request, max_channels=max_channels, max_duration_s=max_duration_s, limits=limits
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
    )
    total_s = sum(len(samples) for samples in channels) / SAMPLE_RATE_HZ or 1.0
    done_s = [0.0] * len(channels)  # per channel, written by the slot running it

    def channel_task(position: int) -> ChannelTranscript:
        def channel_progress(at_s: float) -> None:
            done_s[position] = at_s
            on_progress(100.0 * sum(done_s) / total_s)

        transcript = transcriber.transcribe(channels[position], request.options, channel_progress)
        done_s[position] = len(channels[position]) / SAMPLE_RATE_HZ
        on_progress(100.0 * sum(done_s) / total_s)
        return transcript

    if pool is None:
        transcripts = [channel_task(position) for position in range(len(channels))]
    else:  # each channel on its own, at the same time, on the shared engine slots
        futures = [
            pool.submit(request_id, functools.partial(channel_task, position))
            for position in range(len(channels))
        ]
        wait(futures)
        if any(f.cancelled() for f in futures):
            raise JobCanceled()  # the pool was closed: the service is shutting down
        errors = [error for f in futures if (error := f.exception()) is not None]
        if errors:
            raise next((e for e in errors if isinstance(e, JobCanceled)), errors[0])
        transcripts = [f.result() for f in futures]
    return build_result(request_id, transcriber.name, list(zip(selection, transcripts, strict=True)))

"""The transcription pipeline, blocking, for a worker thread or the offline CLI:
probe -> select channels -> decode -> transcribe each channel on its own -> canonical result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from speechsvc.asr.engine import SAMPLE_RATE_HZ, ChannelTranscript, Transcriber
from speechsvc.audio import isolate
from speechsvc.audio.layout import SelectedChannel, resolve_selection
from speechsvc.errors import AudioTooLong, UndecodableAudio
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
    done_s = 0.0
    transcripts: list[tuple[SelectedChannel, ChannelTranscript]] = []
    for selected, samples in zip(selection, channels, strict=True):

        def channel_progress(at_s: float, offset_s: float = done_s) -> None:
            on_progress(100.0 * (offset_s + at_s) / total_s)

        transcript = transcriber.transcribe(samples, request.options, channel_progress)
        done_s += len(samples) / SAMPLE_RATE_HZ
        on_progress(100.0 * done_s / total_s)
        transcripts.append((selected, transcript))
    return build_result(request_id, transcriber.name, transcripts)

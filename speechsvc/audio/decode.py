"""Probing and decoding with PyAV: every selected channel comes out as 16 kHz mono float32.

The whole stream is resampled to 16 kHz float planar keeping its channel layout, and the selected
channels are then taken from the planes in numpy (API.md §1: each selected channel on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from speechsvc.audio import media
from speechsvc.audio.layout import ChannelRef
from speechsvc.errors import (
    AudioTooLong,
    DecodedTooLarge,
    EmptyAudio,
    NoAudioStream,
    TooManyChannels,
    UndecodableAudio,
    UnprocessableAudio,
    UnsupportedMediaType,
)

SAMPLE_RATE_HZ = 16000
BYTES_PER_SAMPLE = 4  # float32
PROBE_MAX_PACKETS = 200
MAX_BAD_PACKETS = 50  # tolerate a few damaged packets, as telephony recordings have, but not a broken file

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class StreamInfo:
    """One audio stream: its position among the file's audio streams, codec, rate and channel count."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    duration_s: float | None
    decodable: bool = True


@dataclass(frozen=True)
class ProbeResult:
    demuxer: str
    streams: tuple[StreamInfo, ...]
    duration_s: float | None

    @property
    def stream_channels(self) -> list[int]:
        return [s.channels for s in self.streams]


@contextmanager
def open_container(path: Path, media_type: str) -> Iterator[Any]:
    """Open `path` with the demuxer its magic bytes name (see speechsvc.audio.media), nothing else."""
    with open(path, "rb") as handle:
        head = handle.read(media.SNIFF_BYTES)
    if not head:
        raise EmptyAudio("the body is empty")
    demuxer = media.sniff_demuxer(head, media_type)
    if demuxer is None:
        raise UndecodableAudio("the body is not an audio or video container this service reads")
    options = {"sample_rate": str(media.MULAW_RAW_RATE_HZ)} if demuxer == media.MULAW else {}
    try:
        # only the file protocol: no demuxer may reach out to other files or the network
        container = av.open(
            str(path), mode="r", format=demuxer, options={**options, "protocol_whitelist": "file"}
        )
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UndecodableAudio(f"the {demuxer.split(',')[0]} container could not be read: {exc}") from exc
    try:
        if container.format.name not in media.ALLOWED_DEMUXERS:  # belt and braces
            raise UnsupportedMediaType(f"container {container.format.name!r} is not allowed")
        yield container
    finally:
        container.close()


def probe(path: Path, media_type: str, *, max_channels: int) -> ProbeResult:
    """List the audio streams and prove each decodes at least one frame."""
    with open_container(path, media_type) as container:
        audio = list(container.streams.audio)
        if not audio:
            raise NoAudioStream()
        total_channels = sum(stream.codec_context.channels for stream in audio)
        if total_channels > max_channels:
            raise TooManyChannels(
                f"the file has {total_channels} audio channels in {len(audio)} stream(s); "
                f"at most {max_channels} are accepted"
            )
        decoded = _first_frames(container, audio)
        streams = tuple(
            StreamInfo(
                index=i,
                codec=stream.codec_context.name,
                sample_rate=stream.codec_context.sample_rate or 0,
                channels=stream.codec_context.channels,
                duration_s=float(stream.duration * stream.time_base)
                if stream.duration is not None and stream.time_base is not None
                else None,
                decodable=stream.index in decoded,
            )
            for i, stream in enumerate(audio)
        )
        duration = container.duration / av.time_base if container.duration else None
        return ProbeResult(container.format.name, streams, duration)


def _first_frames(container: Any, audio: list[Any]) -> set[int]:
    wanted = {s.index for s in audio}
    decoded: set[int] = set()
    for count, packet in enumerate(container.demux(audio)):
        if count >= PROBE_MAX_PACKETS or decoded == wanted:
            break
        try:
            if packet.decode():
                decoded.add(packet.stream.index)
        except (av.FFmpegError, ValueError):
            continue
    return decoded


ChannelSink = Callable[[int, Samples], None]  # (position in the selection, samples) as they are decoded


@dataclass
class _StreamDecoder:
    resampler: Any
    wanted: list[tuple[int, int]]  # (position in the selection, channel index)
    samples: int = 0

    def take(self, frames: Sequence[Any], sink: ChannelSink) -> None:
        for frame in frames:
            planes = frame.to_ndarray()  # fltp: shape (channels, samples)
            planes = planes.reshape(-1, planes.shape[-1]) if planes.ndim == 2 else planes[None, :]
            for position, channel in self.wanted:
                sink(position, planes[channel].astype(np.float32, copy=True))
            self.samples += planes.shape[-1]


def decode_to(
    path: Path,
    media_type: str,
    refs: Sequence[ChannelRef],
    sink: ChannelSink,
    *,
    max_duration_s: float,
    should_stop: Callable[[], None] | None = None,
    max_decoded_bytes: int | None = None,
) -> list[int]:
    """Decode the selected channels as 16 kHz mono float32 into `sink`; returns samples per channel.
    413 decoded_too_large once all channels together pass `max_decoded_bytes`."""
    if not refs:
        raise UndecodableAudio("no channel selected")
    max_samples = int(max_duration_s * SAMPLE_RATE_HZ)
    max_total = max_decoded_bytes // BYTES_PER_SAMPLE if max_decoded_bytes else None
    counts = [0] * len(refs)
    total = [0]

    def counting_sink(position: int, samples: Samples) -> None:
        counts[position] += len(samples)
        total[0] += len(samples)
        if max_total is not None and total[0] > max_total:
            raise DecodedTooLarge(
                f"the selected channels decode to more than the {max_decoded_bytes} bytes one job may use"
            )
        sink(position, samples)

    with open_container(path, media_type) as container:
        audio = list(container.streams.audio)
        decoders: dict[int, _StreamDecoder] = {}
        for position, ref in enumerate(refs):
            if ref.stream >= len(audio):
                raise UnprocessableAudio(f"the file has no audio stream {ref.stream}")
            stream = audio[ref.stream]
            decoder = decoders.setdefault(
                stream.index,
                _StreamDecoder(av.AudioResampler(format="fltp", rate=SAMPLE_RATE_HZ), []),
            )
            decoder.wanted.append((position, ref.channel))
        bad_packets = 0
        selected = [s for s in audio if s.index in decoders]
        for packet in container.demux(selected):
            decoder = decoders[packet.stream.index]
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError):
                bad_packets += 1
                if bad_packets > MAX_BAD_PACKETS:
                    raise UndecodableAudio("too many damaged packets: the audio is corrupt") from None
                continue
            for frame in frames:
                decoder.take(decoder.resampler.resample(frame), counting_sink)
            if decoder.samples > max_samples:
                raise AudioTooLong(f"the audio is longer than the {max_duration_s:g} s this server accepts")
            if should_stop is not None and decoder.samples % (SAMPLE_RATE_HZ * 60) < 2048:
                should_stop()
        for decoder in decoders.values():
            decoder.take(decoder.resampler.resample(None), counting_sink)  # flush the resampler's delay
    for position, ref in enumerate(refs):
        if counts[position] == 0:
            raise EmptyAudio(f"audio stream {ref.stream} holds no decodable samples")
    return counts


def decode_channels(
    path: Path,
    media_type: str,
    refs: Sequence[ChannelRef],
    *,
    max_duration_s: float,
    should_stop: Callable[[], None] | None = None,
    max_decoded_bytes: int | None = None,
) -> list[Samples]:
    """Decode the selected channels in this process, each as 16 kHz mono float32, in `refs` order."""
    chunks: list[list[Samples]] = [[] for _ in refs]
    decode_to(
        path,
        media_type,
        refs,
        lambda position, samples: chunks[position].append(samples),
        max_duration_s=max_duration_s,
        should_stop=should_stop,
        max_decoded_bytes=max_decoded_bytes,
    )
    return [np.concatenate(parts) for parts in chunks]

"""Writing audio with PyAV: channels of float32 samples to wav, flac, mp3 or opus (the redacted copy of a
job's audio, speechsvc.redact.audio), and reading back a FLAC file this server wrote itself (trusted
bytes: it is read in process, unlike the callers' files, speechsvc.audio.isolate)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]
FRAME_SAMPLES = 960  # 60 ms at 16 kHz: a frame size every encoder here accepts (opus: 2.5-60 ms)


@dataclass(frozen=True)
class AudioFormat:
    container: str
    codec: str
    sample_format: str
    content_type: str
    max_channels: int


AUDIO_FORMATS = {
    "wav": AudioFormat("wav", "pcm_s16le", "s16", "audio/wav", 64),
    "flac": AudioFormat("flac", "flac", "s16", "audio/flac", 8),
    "mp3": AudioFormat("mp3", "libmp3lame", "s16p", "audio/mpeg", 2),
    "opus": AudioFormat("ogg", "libopus", "s16", "audio/ogg", 2),
}


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def encode(channels: Sequence[Samples], rate_hz: int, name: str) -> bytes:
    """The channels (equal lengths) as one file of format `name` (AUDIO_FORMATS), channel for channel."""
    spec = AUDIO_FORMATS[name]
    planes = np.stack([np.asarray(c, dtype=np.float32) for c in channels]) if channels else np.zeros((1, 0))
    pcm = (np.clip(planes, -1.0, 1.0) * 32767).round().astype(np.int16)
    out = io.BytesIO()
    with av.open(out, "w", format=spec.container) as container:
        stream = container.add_stream(spec.codec, rate=rate_hz, layout=_layout(len(pcm)))
        assert isinstance(stream, av.audio.stream.AudioStream)
        stream.format = spec.sample_format
        for at in range(0, pcm.shape[1], FRAME_SAMPLES):
            block = pcm[:, at : at + FRAME_SAMPLES]
            if block.shape[1] < FRAME_SAMPLES and spec.codec == "libopus":
                block = np.pad(block, ((0, 0), (0, FRAME_SAMPLES - block.shape[1])))
            data = block if spec.sample_format.endswith("p") else block.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data), format=spec.sample_format, layout=_layout(len(pcm))
            )
            frame.sample_rate = rate_hz
            frame.pts = at
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def read_flac(path: Path) -> tuple[list[Samples], int]:
    """The channels of a FLAC file this server wrote, as float32, and its rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        blocks = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = int(stream.rate)
        count = stream.codec_context.channels
    if not blocks:
        return [np.zeros(0, dtype=np.float32) for _ in range(count)], rate
    # interleaved s16 decodes to one row of channel-interleaved samples
    joined = np.concatenate([b.reshape(-1) for b in blocks]).reshape(-1, count).T
    return [(row.astype(np.float32) / 32767).astype(np.float32) for row in joined], rate

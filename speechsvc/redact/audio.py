"""The redacted copy of a job's audio: the selected channels, same count, each redacted span (padded by
AUDIO_PAD_S on both sides) replaced by a beep or by silence on the channel it was said on, everything else
as decoded (16 kHz, the rate the decoder heard). Stored as FLAC; re-encoded on the way out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.audio.encode import AUDIO_FORMATS, Samples, encode, read_flac
from speechsvc.errors import InvalidRequest

RATE_HZ = 16000
AUDIO_PAD_S = 0.05
BEEP_HZ = 1000.0
BEEP_LEVEL = 0.25  # -12 dBFS: audible over a call, not painful


def redacted_channels(
    channels: Sequence[Samples], spans: Sequence[tuple[int, float, float]], mode: str
) -> list[Samples]:
    """Copies of `channels` with each (channel position, start s, end s) span replaced (beep | silence)."""
    out = [np.array(samples, dtype=np.float32) for samples in channels]
    for position, start, end in spans:
        samples = out[position]
        first = max(0, int((start - AUDIO_PAD_S) * RATE_HZ))
        last = min(len(samples), int(np.ceil((end + AUDIO_PAD_S) * RATE_HZ)))
        if last <= first:
            continue
        if mode == "beep":
            times = np.arange(first, last, dtype=np.float64) / RATE_HZ
            samples[first:last] = (BEEP_LEVEL * np.sin(2 * np.pi * BEEP_HZ * times)).astype(np.float32)
        else:
            samples[first:last] = 0.0
    return out


def write_redacted(channels: Sequence[Samples], result: dict[str, Any], mode: str, path: Path) -> None:
    """The redacted copy of the result's channels (its `redactions`) as a FLAC file at `path`."""
    positions = {(d["stream"], d["channel"], d["label"]): n for n, d in enumerate(result["channels"])}
    spans = [
        (positions[(r["stream"], r["channel"], r["label"])], r["start"], r["end"])
        for r in result["redactions"]
    ]
    length = max((len(samples) for samples in channels), default=0)
    padded = [np.pad(np.asarray(s, dtype=np.float32), (0, length - len(s))) for s in channels]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(redacted_channels(padded, spans, mode), RATE_HZ, "flac"))


def check_format(name: str, channels: int) -> None:
    """400 naming `format` for a format the copy cannot be given in."""
    spec = AUDIO_FORMATS.get(name)
    if spec is None:
        raise InvalidRequest(f"format must be one of {', '.join(AUDIO_FORMATS)}", param="format")
    if channels > spec.max_channels:
        raise InvalidRequest(f"{name} carries at most {spec.max_channels} channels; the copy has {channels} "
                             "(use wav or flac)", param="format")  # fmt: skip


def transcode(path: Path, name: str) -> tuple[bytes, str]:
    """The stored FLAC copy as format `name`, and its content type."""
    if name == "flac":
        return path.read_bytes(), AUDIO_FORMATS[name].content_type
    channels, rate = read_flac(path)
    return encode(channels, rate, name), AUDIO_FORMATS[name].content_type

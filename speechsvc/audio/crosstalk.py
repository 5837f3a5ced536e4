"""Cross-talk suppression (API.md §1 `crosstalk`, §2b): each sentence once, on its speaker's channel.

Two-channel call recordings often carry each party on the other's channel too (speakerphone echo,
headset bleed, sidetone, a recorder mixing a little of each side into the other). Transcribed channel by
channel, the customer's words then also appear on the agent's channel. For each ordered pair of channels
(A, B) this module asks: is there a delayed, attenuated copy of A in B?

- **Delay**: GCC-PHAT in the telephone band (300-3400 Hz), accumulated over blocks, searched within
  ±0.5 s. A leak gives one sharp peak at the lag where B follows A; independent voices give none.
- **Gain**: in frames where A is active, the ratio of B's band power to A's (A shifted by the delay). Where
  only the leak is on B the ratio is the leak's gain; B's own speech (double-talk) only raises it, so a low
  percentile estimates the gain, per block of BLOCK_S seconds (an automatic gain control drifts).
- **Confidence**: the peak must stand out of the correlation's spread, and most A-active frames must sit
  near the estimated gain. Otherwise "no leak", and nothing is touched.
- **Suppression**: a frame of B whose power is explained by the leaked copy of A (within MARGIN_DB) is
  leak; runs of leak frames at least MIN_MUTE_S long, away (HANGOVER_S) from B's own speech, are muted
  before VAD and decoding. Double-talk, where B's power is well above the leak's, is kept.

Everything is numpy on the decoded 16 kHz channels, block by block: memory stays bounded by the blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]
RATE_HZ = 16000
FRAME = 320  # 20 ms
BAND_HZ = (300.0, 3400.0)
MAX_LAG_S = 0.5
GCC_BLOCK = 1 << 16  # 4.1 s per correlation block
SOURCE_BLOCK_SHARE = 0.05  # correlation blocks where the source is this quiet (vs its loudest) are skipped
BLOCK_S = 5.0  # gain estimated per block: follows an AGC
MAX_DRIFT_DB = 6.0  # how far a block's gain may move from the call's (an AGC's swing)
MIN_BLOCK_FRAMES = 50  # A-active frames (1 s) a block needs for a gain of its own
MIN_PEAK_Z = 8.0  # the GCC peak above the correlation's spread (clean calls measured 4.3-6.6, leaks 9-80)
MIN_CONSISTENT = 0.25  # share of A-active frames within CONSISTENT_DB of the gain
CONSISTENT_DB = 4.0
ACTIVE_DB = 15.0  # A is active this far above its quiet frames
MIN_GAIN_DB = -30.0  # a copy fainter than this is not transcribed anyway
MAX_GAIN_DB = -3.0  # a copy this loud is a duplicated channel (mono saved as stereo), not cross-talk
MARGIN_DB = 6.0  # B's frame is leak when its power is within this of the predicted leak
HANGOVER_S = 0.1
MIN_MUTE_S = 0.2
FADE = 80  # samples of fade at the edges of a muted run


@dataclass
class Leak:
    source: int  # position of A in the selection
    target: int  # position of B
    delay: int  # samples
    gain_db: float
    leak_frames: npt.NDArray[np.bool_] = field(repr=False)  # frames of B explained by A's copy
    muted_frames: npt.NDArray[np.bool_] = field(repr=False)


def _frame_band_power(audio: Samples, delay: int = 0, frames: int | None = None) -> npt.NDArray[np.float64]:
    """Power per 20 ms frame in the telephone band, of the audio moved `delay` samples later."""
    frames = (len(audio) + delay) // FRAME if frames is None else frames
    power = np.zeros(frames, dtype=np.float64)
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE_HZ)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    window = np.hanning(FRAME)
    step = 4096  # frames per chunk: bounded memory on long channels
    for first in range(0, frames, step):
        last = min(frames, first + step)
        begin, end = first * FRAME - delay, last * FRAME - delay
        block = np.zeros((last - first) * FRAME, dtype=np.float64)
        piece = np.asarray(audio[max(0, begin) : max(0, end)], dtype=np.float64)
        block[max(0, -begin) : max(0, -begin) + len(piece)] = piece
        spectrum = np.abs(np.fft.rfft(block.reshape(-1, FRAME) * window, axis=1)) ** 2
        power[first:last] = spectrum[:, band].sum(axis=1) + 1e-12
    return power


def _gcc_phat(a: Samples, b: Samples) -> npt.NDArray[np.float64]:
    """GCC-PHAT of (a, b) over lags -MAX_LAG..+MAX_LAG (index MAX_LAG = lag 0; positive: b follows a)."""
    max_lag = int(MAX_LAG_S * RATE_HZ)
    length = min(len(a), len(b))
    freqs = np.fft.rfftfreq(GCC_BLOCK, 1 / RATE_HZ)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    total = np.zeros(len(freqs), dtype=np.complex128)
    hop = GCC_BLOCK // 2
    starts = range(0, max(1, length - GCC_BLOCK // 4), hop)
    # only blocks where the source speaks: PHAT gives a silent block as much weight as a loud one, and
    # a source that talks a few seconds of a long call would drown in them
    loudness = [float(np.mean(np.square(np.asarray(a[start : start + GCC_BLOCK], dtype=np.float64))))
                for start in starts]  # fmt: skip
    floor = max(loudness, default=0.0) * SOURCE_BLOCK_SHARE
    for start, loud in zip(starts, loudness, strict=True):
        if loud <= floor:
            continue
        x = np.zeros(GCC_BLOCK)
        y = np.zeros(GCC_BLOCK)
        chunk_a = np.asarray(a[start : start + GCC_BLOCK], dtype=np.float64)
        chunk_b = np.asarray(b[start : start + GCC_BLOCK], dtype=np.float64)
        x[: len(chunk_a)], y[: len(chunk_b)] = chunk_a, chunk_b
        cross = np.conj(np.fft.rfft(x)) * np.fft.rfft(y)
        total += np.where(band, cross / (np.abs(cross) + 1e-12), 0)
    correlation = np.fft.irfft(total, GCC_BLOCK)
    return np.concatenate([correlation[-max_lag:], correlation[: max_lag + 1]])


def _mode_db(values: npt.NDArray[np.float64]) -> float:
    """The densest value (dB) at or below MAX_GAIN_DB: where the leak-only frames cluster. Frames above it
    are B's own speech, or A's channel carrying B's own leak back (both loud on B): a low percentile or a
    mean would be pulled by them, the attenuated cluster is not."""
    values = values[values <= MAX_GAIN_DB + CONSISTENT_DB]
    if len(values) == 0:
        return MAX_GAIN_DB + CONSISTENT_DB + 1.0  # nothing attenuated: no leak
    bins = np.arange(np.floor(values.min()) - 1, np.ceil(values.max()) + 1.5, 0.5)
    counts, edges = np.histogram(values, bins=bins)
    smooth = np.convolve(counts, np.ones(5), mode="same")  # ±1 dB
    top = int(np.argmax(smooth))
    return float((edges[top] + edges[top + 1]) / 2)


def _per_block_gain(
    ratio_db: npt.NDArray[np.float64], active: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """The leak's gain (dB) for every frame: the mode of the A-active ratios of its block (an AGC drifts),
    or of the whole channel where a block has too few."""
    frames = len(ratio_db)
    per_block = int(BLOCK_S * RATE_HZ / FRAME)
    overall = _mode_db(ratio_db[active]) if active.any() else 0.0
    gains = np.full(frames, overall)
    for first in range(0, frames, per_block):
        part = slice(first, min(frames, first + per_block))
        values = ratio_db[part][active[part]]
        if len(values) >= MIN_BLOCK_FRAMES:
            local = _mode_db(values)
            if abs(local - overall) <= MAX_DRIFT_DB:  # a block where only the other party speaks has no
                gains[part] = local  # leak cluster of its own: it keeps the overall gain
    return gains


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def estimate(channels: Sequence[Samples], release: Callable[[Samples], None] = lambda _: None) -> list[Leak]:
    """Every confident leak between the channels (none for one channel, or for clean calls). `release` is
    called with a channel once a pass over it is done (memory-mapped channels drop their pages)."""
    if len(channels) < 2:
        return []
    powers = []
    for channel in channels:
        powers.append(_frame_band_power(channel))
        release(channel)
    leaks = []
    max_lag = int(MAX_LAG_S * RATE_HZ)
    for source in range(len(channels)):
        for target in range(len(channels)):
            if source == target:
                continue
            correlation = _gcc_phat(channels[source], channels[target])
            release(channels[source])
            release(channels[target])
            following = np.abs(correlation[max_lag:])  # lags >= 0: the target follows the source
            lag = int(np.argmax(following))
            spread = np.abs(correlation)
            z = (following[lag] - float(np.median(spread))) / (float(np.std(spread)) + 1e-12)
            if z < MIN_PEAK_Z:
                continue
            shifted = _frame_band_power(channels[source], lag, len(powers[target]))
            release(channels[source])
            leak = _measure(shifted, powers[target], source, target, lag)
            if leak is not None:
                leaks.append(leak)
    return leaks


def _measure(
    shifted: npt.NDArray[np.float64], power_b: npt.NDArray[np.float64], source: int, target: int, delay: int
) -> Leak | None:
    quiet = float(np.percentile(shifted, 20))
    active = shifted > quiet * 10 ** (ACTIVE_DB / 10)
    if active.sum() < 50:  # under a second of A: nothing to tell a leak by
        return None
    ratio_db = 10 * np.log10(power_b / shifted)
    gains = _per_block_gain(ratio_db, active)
    near = np.abs(ratio_db - gains)[active] <= CONSISTENT_DB
    if float(near.mean()) < MIN_CONSISTENT:
        return None
    level = _mode_db(ratio_db[active])
    if not MIN_GAIN_DB <= level <= MAX_GAIN_DB:  # too faint to be transcribed, or a duplicated channel
        return None
    leak_frames = active & (ratio_db <= gains + MARGIN_DB)
    b_active = power_b > float(np.percentile(power_b, 20)) * 10 ** (ACTIVE_DB / 10)
    own = b_active & ~leak_frames  # B's power is not explained by the copy of A: B speaks
    return Leak(source, target, delay, level, leak_frames, _mute_plan(own, active))


def _dilate(mask: npt.NDArray[np.bool_], frames: int) -> npt.NDArray[np.bool_]:
    out = mask.copy()
    for shift in range(1, frames + 1):
        out[shift:] |= mask[:-shift]
        out[:-shift] |= mask[shift:]
    return out


def _mute_plan(own: npt.NDArray[np.bool_], source_active: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Where to mute B: while A speaks (its copy may be heard), at least HANGOVER_S from B's own speech,
    in runs of at least MIN_MUTE_S (so B's own short words are never cut)."""
    hang = int(HANGOVER_S * RATE_HZ / FRAME)
    candidate = _dilate(source_active, hang) & ~_dilate(own, hang)
    muted = np.zeros_like(candidate)
    for start, end in _runs(candidate):
        if (end - start) * FRAME >= MIN_MUTE_S * RATE_HZ:
            muted[start:end] = True
    return muted


def suppress(channels: Sequence[Samples], leaks: Sequence[Leak]) -> list[Samples]:
    """The channels with the muted frames of each leak set to silence (short fades at the edges);
    channels without a leak are returned as they are."""
    out = list(channels)
    fade_in = np.linspace(1.0, 0.0, FADE, dtype=np.float32)
    for target in sorted({leak.target for leak in leaks}):
        muted = np.zeros(len(channels[target]) // FRAME, dtype=bool)
        for leak in leaks:
            if leak.target == target:
                muted |= leak.muted_frames[: len(muted)]
        audio = np.array(channels[target], dtype=np.float32)  # a copy: the decoded channel is read-only
        for start, end in _runs(muted):
            first, last = start * FRAME, end * FRAME
            audio[first:last] = 0.0
            before = audio[max(0, first - FADE) : first]
            before *= fade_in[-len(before) :] if len(before) else before
            after = audio[last : last + FADE]
            after *= fade_in[::-1][: len(after)]
        out[target] = audio
    return out


def muted_seconds(leaks: Sequence[Leak], target: int) -> float:
    masks = [leak.muted_frames for leak in leaks if leak.target == target]
    if not masks:
        return 0.0
    combined = np.logical_or.reduce([mask[: min(len(m) for m in masks)] for mask in masks])
    return round(float(combined.sum()) * FRAME / RATE_HZ, 2)


def leak_share(leaks: Sequence[Leak], target: int, start_s: float, end_s: float) -> float:
    """Share of [start_s, end_s) on channel `target` that a leak explains (0 when there is none)."""
    first, last = (
        int(start_s * RATE_HZ / FRAME),
        max(int(start_s * RATE_HZ / FRAME) + 1, int(end_s * RATE_HZ / FRAME)),
    )
    shares = [float(leak.leak_frames[first:last].mean()) for leak in leaks if leak.target == target
              and first < len(leak.leak_frames)]  # fmt: skip
    return max(shares, default=0.0)

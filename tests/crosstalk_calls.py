"""Stereo calls with cross-talk, built from the real corpus voices: agent and customer take turns (or talk
at once), and each channel gets a band-limited (300-3400 Hz), delayed, attenuated copy of the other, as
a speakerphone echo or headset bleed would put there. Used by the cross-talk tests and benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from tests.conftest import JFK_TEXT, STEREO_TEXTS, corpus

Samples = npt.NDArray[np.float32]
RATE = 16000
FRAME_S = 0.02
GAP = np.zeros(int(0.6 * RATE), dtype=np.float32)


@cache
def voices() -> dict[str, Samples]:
    (jfk,) = decode_channels(corpus("jfk.flac"), "audio/flac", [ChannelRef(0, 0)], max_duration_s=60)
    wizard, horizon = decode_channels(
        corpus("stereo_diarization.wav"), "audio/wav", [ChannelRef(0, 0), ChannelRef(0, 1)], max_duration_s=60
    )
    return {"jfk": jfk, "wizard": wizard, "horizon": horizon}


TEXTS = {"jfk": JFK_TEXT, "wizard": STEREO_TEXTS[0], "horizon": STEREO_TEXTS[1]}


@dataclass(frozen=True)
class Call:
    agent: Samples  # channel 0, with the leak
    customer: Samples  # channel 1, with the leak
    clean: tuple[Samples, Samples]  # the same call without any leak
    texts: tuple[str, str]


def bandpass(audio: Samples, low_hz: float = 300.0, high_hz: float = 3400.0, taps: int = 255) -> Samples:
    n = np.arange(taps) - (taps - 1) / 2
    kernel = 2 * high_hz / RATE * np.sinc(2 * high_hz / RATE * n) - 2 * low_hz / RATE * np.sinc(
        2 * low_hz / RATE * n
    )
    return np.convolve(audio, kernel * np.hamming(taps), mode="same").astype(np.float32)


def leaked(
    source: Samples, target: Samples, gain_db: float, delay_ms: float, drift_db: float = 0.0
) -> Samples:
    """target + a band-limited copy of source, delay_ms later and gain_db lower (drifting by drift_db over
    the call, as an automatic gain control does)."""
    delay = int(delay_ms * RATE / 1000)
    copy = np.zeros_like(target)
    copy[delay:] = bandpass(source)[: len(target) - delay]
    gain = 10 ** ((gain_db + np.linspace(-drift_db / 2, drift_db / 2, len(target))) / 20)
    return (target + gain * copy).astype(np.float32)


def turns(agent_says: list[str], customer_says: list[str], overlap_s: float = 0.0) -> tuple[Samples, Samples]:
    """Agent and customer alternate, starting with the agent; with overlap_s > 0 each turn starts that much
    before the other one ended (double-talk)."""
    said = voices()
    left: list[Samples] = []
    right: list[Samples] = []
    order = [("agent", name) for name in agent_says]
    for number, name in enumerate(customer_says):
        order.insert(2 * number + 1, ("customer", name))
    length = 0
    for who, name in order:
        clip = said[name]
        start = max(0, length - int(overlap_s * RATE))
        for channel, mine in ((left, who == "agent"), (right, who == "customer")):
            have = sum(len(part) for part in channel)
            if mine:
                channel.append(np.zeros(max(0, start - have), dtype=np.float32))
                channel.append(clip)
        length = start + len(clip) + len(GAP)
    total = max(sum(len(p) for p in left), sum(len(p) for p in right)) + len(GAP)
    out = []
    for channel in (left, right):
        audio = np.concatenate(channel) if channel else np.zeros(0, dtype=np.float32)
        out.append(np.concatenate([audio, np.zeros(total - len(audio), dtype=np.float32)]))
    noise = np.random.default_rng(7)
    return tuple(a + (noise.standard_normal(len(a)) * 1e-3).astype(np.float32) for a in out)  # type: ignore[return-value]


def leaky_call(gain_db: float = -12.0, delay_ms: float = 30.0, overlap_s: float = 0.0, drift_db: float = 0.0,
               agent_says: tuple[str, ...] = ("jfk", "horizon"), customer_says: tuple[str, ...] = ("wizard",)) -> Call:  # fmt: skip
    agent, customer = turns(list(agent_says), list(customer_says), overlap_s)
    return Call(
        leaked(customer, agent, gain_db, delay_ms + 7, drift_db),
        leaked(agent, customer, gain_db, delay_ms, drift_db),
        (agent, customer),
        (" ".join(TEXTS[n] for n in agent_says), " ".join(TEXTS[n] for n in customer_says)),
    )

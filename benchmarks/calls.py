"""Stereo 'calls' built from the real corpus recordings, with the known text of each channel.

Agent and customer take turns; each turn is one real utterance on the speaker's channel while the other
channel is silent, as in a two-channel call recording. Utterances rotate so that calls differ.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from speechsvc.audio.decode import SAMPLE_RATE_HZ, decode_channels
from speechsvc.audio.layout import ChannelRef

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
GAP_S = 0.4
UTTERANCES = (
    ("jfk.flac", 0, "And so my fellow Americans, ask not what your country can do for you, "
                    "ask what you can do for your country."),
    ("stereo_diarization.wav", 0, "He began a confused complaint against the wizard, who had vanished "
                                  "behind the curtain on the left."),
    ("stereo_diarization.wav", 1, "The horizon seems extremely distant."),
)  # fmt: skip

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Call:
    path: Path
    duration_s: float
    texts: tuple[str, str]  # agent (channel 0), customer (channel 1)


def _clips(corpus: Path) -> list[Samples]:
    clips = []
    for name, channel, _ in UTTERANCES:
        (samples,) = decode_channels(corpus / name, "audio/wav", [ChannelRef(0, channel)], max_duration_s=600)
        clips.append(samples)
    return clips


def make_calls(out_dir: Path, count: int, seconds: float, corpus: Path = CORPUS) -> list[Call]:
    """Write `count` stereo 16 kHz WAV calls of about `seconds` each into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = _clips(corpus)
    gap = np.zeros(int(GAP_S * SAMPLE_RATE_HZ), dtype=np.float32)
    calls = []
    for number in range(count):
        channels: list[list[Samples]] = [[], []]
        texts: list[list[str]] = [[], []]
        turn, length = 0, 0
        while length < seconds * SAMPLE_RATE_HZ:
            speaker = turn % 2
            index = (number + turn) % len(clips)
            clip = clips[index]
            channels[speaker] += [clip, gap]
            channels[1 - speaker] += [np.zeros_like(clip), gap]
            texts[speaker].append(UTTERANCES[index][2])
            length += len(clip) + len(gap)
            turn += 1
        left, right = (np.concatenate(parts) for parts in channels)
        path = out_dir / f"call_{number:02d}.wav"
        pcm = (np.clip(np.stack([left, right], axis=1), -1, 1) * 32767).astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE_HZ)
            out.writeframes(pcm.tobytes())
        calls.append(Call(path, len(left) / SAMPLE_RATE_HZ, (" ".join(texts[0]), " ".join(texts[1]))))
    return calls


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speakers"
VOICES = ("voice_en_us_m3.ogg", "voice_en_f4.ogg", "voice_en_us_f2.ogg")  # espeak-ng, fixtures/speakers
GAPLESS_GAP_S = 0.1  # a breath between two utterances: the decoder sees no pause to rest on


def _voices() -> tuple[list[Samples], str]:
    clips = []
    for name in VOICES:
        (samples,) = decode_channels(FIXTURES / name, "audio/ogg", [ChannelRef(0, 0)], max_duration_s=600)
        clips.append(samples)
    return clips, " ".join((FIXTURES / "texts.txt").read_text().split())


def _write(path: Path, channels: list[Samples]) -> None:
    length = max(len(channel) for channel in channels)
    frames = np.stack([np.pad(channel, (0, length - len(channel))) for channel in channels], axis=1)
    pcm = (np.clip(frames, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(len(channels))
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE_HZ)
        out.writeframes(pcm.tobytes())


def make_gapless_calls(out_dir: Path, count: int, seconds: float, corpus: Path = CORPUS) -> list[Call]:
    """`count` stereo calls where both sides talk all the time: each channel is a run of utterances
    (the corpus's three and the three generated voices reading three sentences) with only a breath
    between them, the two channels in different orders."""
    out_dir.mkdir(parents=True, exist_ok=True)
    voices, voice_text = _voices()
    clips = _clips(corpus) + voices
    texts_of = [text for _, _, text in UTTERANCES] + [voice_text] * len(voices)
    gap = np.zeros(int(GAPLESS_GAP_S * SAMPLE_RATE_HZ), dtype=np.float32)
    calls = []
    for number in range(count):
        channels: list[Samples] = []
        texts: list[str] = []
        for side in (0, 1):
            parts: list[Samples] = []
            said: list[str] = []
            turn = 0
            while sum(len(part) for part in parts) < seconds * SAMPLE_RATE_HZ:
                index = (number + 2 * side + 3 * turn) % len(clips)  # one of the corpus's, then a voice's, …
                parts += [clips[index], gap]
                said.append(texts_of[index])
                turn += 1
            channels.append(np.concatenate(parts))  # whole utterances: the texts stay exact
            texts.append(" ".join(said))
        path = out_dir / f"gapless_{number:02d}.wav"
        _write(path, channels)
        duration_s = max(len(channel) for channel in channels) / SAMPLE_RATE_HZ
        calls.append(Call(path, duration_s, (texts[0], texts[1])))
    return calls


def make_monologue(out_dir: Path, corpus: Path = CORPUS) -> tuple[Path, str, float]:
    """One mono channel of different sentences without pauses (a generated voice's three, then the
    corpus's three): where a decoder without previous text reads worst. (path, text, seconds)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    voices, voice_text = _voices()
    gap = np.zeros(int(GAPLESS_GAP_S * SAMPLE_RATE_HZ), dtype=np.float32)
    parts = [voices[0], gap]
    for clip in _clips(corpus):
        parts += [clip, gap]
    audio = np.concatenate(parts)
    path = out_dir / "monologue.wav"
    _write(path, [audio])
    text = " ".join([voice_text, *(text for _, _, text in UTTERANCES)])
    return path, text, len(audio) / SAMPLE_RATE_HZ

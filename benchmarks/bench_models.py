"""Which model for telephone calls: WER and speed of each model on 8 kHz mu-law two-channel calls.

    python benchmarks/bench_models.py [--models tiny.en,base] [--calls 4]

The calls are what a telephone system records: two channels of 8 kHz G.711 mu-law in a WAV file. Two sets:
the dialogue of fixtures/dialogue (an agent and a customer, espeak-ng voices: tests/dialogue_calls.py, the
lines in a different order per call) and the corpus's real voices taking turns (benchmarks/calls.py). Each
call goes through the service's own steps, offline: PyAV decodes and resamples to 16 kHz, each channel is
decoded on its own with the service's defaults (beam 5, VAD, word timestamps, language en), int8 on the
CPU, one channel after the other. Prints WER against the known texts and x real time (channel audio
seconds per second), per model and set, in one run on this machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_service import corpus_wer
from calls import make_calls

from speechsvc.asr.engine import TranscribeOptions, WhisperEngine
from speechsvc.asr.models import join_base_model, resolve_model
from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from tests.dialogue_calls import TURN_TAKING, call

TELEPHONE_RATE_HZ = 8000


def write_mulaw(path: Path, channels: list[np.ndarray]) -> Path:
    """Two channels (16 kHz float) as an 8 kHz mu-law WAV, resampled by PyAV (libswresample)."""
    frames = np.clip(np.stack(channels), -1, 1).astype(np.float32)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_mulaw", rate=TELEPHONE_RATE_HZ, layout="stereo")
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=TELEPHONE_RATE_HZ)
        frame = av.AudioFrame.from_ndarray(frames, format="fltp", layout="stereo")
        frame.sample_rate = 16000
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def dialogue_calls(folder: Path, count: int) -> list[tuple[Path, tuple[str, str]]]:
    made = []
    for number in range(count):
        script = TURN_TAKING[number:] + TURN_TAKING[:number] if number % 2 == 0 else TURN_TAKING
        found = call(script, repeat=1 + number % 2)
        path = write_mulaw(folder / f"dialogue_{number}.wav", list(found.channels))
        made.append((path, (found.texts("agent"), found.texts("customer"))))
    return made


def corpus_calls(folder: Path, count: int) -> list[tuple[Path, tuple[str, str]]]:
    made = []
    for found in make_calls(folder / "corpus16k", count, 40.0):
        (left, right) = decode_channels(
            found.path, "audio/wav", [ChannelRef(0, 0), ChannelRef(0, 1)], max_duration_s=600
        )
        made.append((write_mulaw(folder / f"corpus_{found.path.stem}.wav", [left, right]), found.texts))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--calls", type=int, default=4)
    args = parser.parse_args()
    from faster_whisper import WhisperModel

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        sets = {"dialogue (espeak voices)": dialogue_calls(folder, args.calls),
                "corpus voices": corpus_calls(folder, args.calls)}  # fmt: skip
        for name in args.models.split(","):
            spec = resolve_model(name, folder / "models")
            if spec.source == "parts":
                join_base_model(folder / "models")
            model = WhisperModel(str(spec.path or spec.name), device="cpu", compute_type="int8")
            engine = WhisperEngine(name, model)
            options = TranscribeOptions(language="en")
            for set_name, calls in sets.items():
                references, hypotheses, audio_s, wall_s = [], [], 0.0, 0.0
                for path, texts in calls:
                    channels = decode_channels(
                        path, "audio/wav", [ChannelRef(0, 0), ChannelRef(0, 1)], max_duration_s=600
                    )
                    started = time.perf_counter()
                    for samples, text in zip(channels, texts, strict=True):
                        found = engine.transcribe(samples, options, lambda _: None)
                        hypotheses.append(" ".join(s.text for s in found.segments))
                        references.append(text)
                        audio_s += len(samples) / 16000
                    wall_s += time.perf_counter() - started
                rows.append((name, set_name, corpus_wer(references, hypotheses), audio_s / wall_s, audio_s))
            del engine, model
    print("\n| model | calls (8 kHz mu-law, two channels) | WER | x real time | channel audio s |")
    print("|---|---|---|---|---|")
    for name, set_name, error, speed, audio_s in rows:
        print(f"| {name} | {set_name} | {error:.3f} | {speed:.1f} | {audio_s:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

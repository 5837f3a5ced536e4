"""What one live final costs and how well it reads, per decoder setting: the utterances the live endpointer
cuts from real recordings (JFK, the stereo corpus file) and the dialogue calls, each decoded with every
setting in turn (alternating, so that a drift in the machine's speed falls on all), timed, and the finals'
WER per source against the truth.

    python benchmarks/bench_live_finals.py [--rounds 2] [--settings full+prompt,short,…]

Settings: the encoder window (`full`: Whisper's 30 s; `short`: the utterance + 5 s in steps of 10 s), the
channel's earlier finals as the prompt or not, and beam 5 (the file jobs') or greedy. The model is tiny.en
on the CPU, through the same code as the server's sequential decoder (speechsvc.live.decoder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechsvc.asr.engine import SAMPLE_RATE_HZ
from speechsvc.asr.models import ModelRegistry, pick_compute_type, whisper_loader
from speechsvc.asr.short_window import FULL_WINDOW_FRAMES, window_frames
from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from speechsvc.live.decoder import FINAL, decode_utterance
from speechsvc.live.endpoint import Frontend, Utterance
from tests.conftest import CORPUS, JFK_TEXT, STEREO_TEXTS
from tests.dialogue_calls import TURN_TAKING, call
from tests.integration.helpers import wer

CHUNK = 1600  # 100 ms, as clients send
PROMPT_CHARS = 400  # of the channel's earlier finals, as the server once prompted (Whisper keeps ~220 tokens)


@dataclass(frozen=True)
class Setting:
    name: str
    full_window: bool
    prompt_chars: int  # of the channel's earlier finals; 0: no prompt
    beam_size: int


SETTINGS = {
    s.name: s
    for s in (
        Setting("full+prompt", True, PROMPT_CHARS, 5),
        Setting("full", True, 0, 5),
        Setting("short+prompt", False, PROMPT_CHARS, 5),
        Setting("short+prompt 60", False, 60, 5),
        Setting("short", False, 0, 5),
        Setting("short greedy", False, 0, 1),
    )
}


def sources() -> dict[str, tuple[list[npt.NDArray[np.float32]], list[str]]]:
    """name -> (channels at 16 kHz, each channel's true text)."""
    jfk = decode_channels(CORPUS / "jfk.flac", "audio/flac", [ChannelRef(0, 0)], max_duration_s=60)
    stereo = decode_channels(
        CORPUS / "stereo_diarization.wav",
        "audio/wav",
        [ChannelRef(0, 0), ChannelRef(0, 1)],
        max_duration_s=60,
    )
    dialogue = call(TURN_TAKING)
    return {
        "jfk": (list(jfk), [JFK_TEXT]),
        "stereo": (list(stereo), list(STEREO_TEXTS)),
        "dialogue": (list(dialogue.channels), [dialogue.texts("agent"), dialogue.texts("customer")]),
    }


def utterances(channel: npt.NDArray[np.float32], pause_ms: int) -> list[Utterance]:
    frontend = Frontend(pause_ms, speech_final=True)
    found: list[Utterance] = []
    for at in range(0, len(channel), CHUNK):
        found += [e for e in frontend.push(channel[None, at : at + CHUNK]) if isinstance(e, Utterance)]
    return found + [u for u in frontend.flush(from_finalize=False) if u is not None]


def decode(
    engine: object, setting: Setting, audio: npt.NDArray[np.float32], earlier: str
) -> tuple[str, float]:
    prompt = (earlier[-setting.prompt_chars :].strip() or None) if setting.prompt_chars else None
    options = replace(FINAL, language="en", beam_size=setting.beam_size, prompt=prompt)
    frames = FULL_WINDOW_FRAMES if setting.full_window else window_frames(len(audio) / SAMPLE_RATE_HZ)
    began = time.perf_counter()
    transcript = decode_utterance(engine, "bench", 0, audio, options, frames=frames)  # type: ignore[arg-type]
    return " ".join(s.text.strip() for s in transcript.segments), time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--rounds", type=int, default=1, help="times each utterance is decoded per setting")
    parser.add_argument("--pause-ms", type=int, default=300, help="the endpointing that cuts the utterances")
    args = parser.parse_args()
    chosen = [SETTINGS[name] for name in args.settings.split(",")]
    registry = ModelRegistry(
        "tiny.en",
        Path("/tmp/bench-live-finals-models"),
        whisper_loader("cpu", pick_compute_type("auto", "cpu")),
    )
    engine = registry.get()
    times: dict[str, list[float]] = {s.name: [] for s in chosen}
    wers: dict[str, dict[str, float]] = {s.name: {} for s in chosen}
    load = os.getloadavg()[0]
    count = 0
    decode(engine, chosen[0], np.zeros(SAMPLE_RATE_HZ, np.float32), "")  # warm-up
    for name, (channels, truths) in sources().items():
        texts: dict[str, list[str]] = {s.name: [] for s in chosen}
        for channel, truth in zip(channels, truths, strict=True):
            heard: dict[str, list[str]] = {s.name: [] for s in chosen}
            for utterance in utterances(channel, args.pause_ms):
                assert utterance.audio is not None
                count += 1
                for round_ in range(args.rounds):
                    order = chosen if (count + round_) % 2 else chosen[::-1]  # alternate the order
                    for setting in order:
                        text, took = decode(engine, setting, utterance.audio, " ".join(heard[setting.name]))
                        times[setting.name].append(took)
                        if round_ == 0:
                            heard[setting.name].append(text)
            for setting in chosen:
                texts[setting.name].append(wer(truth, " ".join(heard[setting.name])))
        for setting in chosen:
            wers[setting.name][name] = statistics.mean(texts[setting.name])
    load = (load + os.getloadavg()[0]) / 2
    print(f"tiny.en int8, CPU, {os.cpu_count()} cores, load average ~{load:.1f}; {count} utterances "
          f"(endpointing {args.pause_ms} ms), {args.rounds} round(s)")  # fmt: skip
    names = list(next(iter(wers.values())))
    print("| setting | decode p50 s | decode p90 s | " + " | ".join(f"WER {n}" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for setting in chosen:
        took = sorted(times[setting.name])
        p90 = took[min(len(took) - 1, int(0.9 * len(took)))]
        cells = " | ".join(f"{wers[setting.name][n]:.3f}" for n in names)
        print(f"| {setting.name} | {statistics.median(took):.2f} | {p90:.2f} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cross-talk suppression end to end with the real tiny.en model (issue 12): on a call whose channels
carry each other's speech at -12 dB, each sentence comes out once, on its speaker's channel; own speech
reads as on the clean call; with crosstalk=off the copies are transcribed (what the feature prevents);
a clean call reads the same with auto and off; the JSON result reports the leaks."""

from pathlib import Path
from typing import Any

import pytest

from speechsvc.asr.models import ModelRegistry
from speechsvc.audio.isolate import DecodeLimits
from speechsvc.jobs.model import JobRequest
from speechsvc.service.pipeline import run_pipeline
from tests.conftest import write_wav
from tests.crosstalk_calls import TEXTS, leaky_call
from tests.integration.helpers import normalise, wer

pytestmark = pytest.mark.model


def transcribe(registry: ModelRegistry, path: Path, crosstalk: str, tmp_path: Path) -> dict[str, Any]:
    request = JobRequest(model="tiny.en", labels=("agent", "customer"), crosstalk=crosstalk)
    return run_pipeline("call", path, "audio/wav", request, registry.get(), max_duration_s=600, max_channels=8,
                        limits=DecodeLimits(), scratch_dir=tmp_path / "scratch", on_progress=lambda _: None)  # fmt: skip


def texts(result: dict[str, Any]) -> list[str]:
    return [" ".join(segment["text"] for segment in channel["segments"]) for channel in result["channels"]]


def said(text: str, sentence: str) -> bool:
    """Most of the sentence's words are in the text (tiny.en drops or bends a word at times)."""
    return _share(normalise(sentence).split(), normalise(text).split()) >= 0.7


def echoed(text: str, sentence: str) -> bool:
    """Part of the sentence came through (a copy reads worse than the original)."""
    return _share(normalise(sentence).split(), normalise(text).split()) >= 0.4


def _share(words: list[str], within: list[str]) -> float:
    return sum(word in within for word in words) / len(words)


def test_each_sentence_once_on_its_speakers_channel(tiny_registry: ModelRegistry, tmp_path: Path) -> None:
    call = leaky_call(gain_db=-12.0, delay_ms=30.0)
    leaky = write_wav(tmp_path / "leaky.wav", [call.agent, call.customer])
    clean = write_wav(tmp_path / "clean.wav", list(call.clean))
    auto = transcribe(tiny_registry, leaky, "auto", tmp_path)
    agent, customer = texts(auto)
    assert said(agent, TEXTS["jfk"]) and said(agent, TEXTS["horizon"]) and not said(agent, TEXTS["wizard"]), (
        agent
    )
    assert said(customer, TEXTS["wizard"]) and not echoed(customer, TEXTS["jfk"]), customer
    assert not echoed(customer, TEXTS["horizon"]), customer
    reference = texts(transcribe(tiny_registry, clean, "off", tmp_path))
    for ours, theirs, truth in zip(texts(auto), reference, call.texts, strict=True):
        assert wer(truth, ours) <= wer(truth, theirs) + 0.02, (ours, theirs)  # own speech not hurt
    report = auto["crosstalk"]
    assert report["applied"] is True
    found = {(leak["from"], leak["to"]): leak for leak in report["leaks"]}
    assert (
        abs(found[("agent", "customer")]["delay_ms"] - 30.0) <= 5
        and abs(found[("agent", "customer")]["gain_db"] + 12) <= 3
    )
    assert report["suppressed_s"]["customer"] > 3.0
    off_agent, off_customer = texts(transcribe(tiny_registry, leaky, "off", tmp_path))
    assert echoed(off_customer, TEXTS["jfk"]) and echoed(off_agent, TEXTS["wizard"])  # without it: twice


def test_a_clean_call_reads_the_same_with_auto_and_off(tiny_registry: ModelRegistry, tmp_path: Path) -> None:
    call = leaky_call()
    clean = write_wav(tmp_path / "clean.wav", list(call.clean))
    auto = transcribe(tiny_registry, clean, "auto", tmp_path)
    assert texts(auto) == texts(transcribe(tiny_registry, clean, "off", tmp_path))
    assert auto["crosstalk"] == {"applied": False, "leaks": [], "suppressed_s": {}}

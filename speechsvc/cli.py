"""`speechsvc transcribe FILE…`: the service's pipeline, offline, one shot; one result per file.

Results go to stdout (JSON Lines for json, each document with the file's name; a `==> FILE <==` header
before each result of a text format when there are several files) or, with --output-dir, one file each,
named after the input and the format. Errors speak of the CLI's flags, not of query parameters."""

from __future__ import annotations

import argparse
import dataclasses
import json
import mimetypes
import os
import re
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from speechsvc.api.params import decoder_options, parse_speakers
from speechsvc.app import build_registry, engine_plan
from speechsvc.asr.scheduler import FairPool
from speechsvc.audio.layout import parse_channel_labels, parse_channel_layout
from speechsvc.config import Config
from speechsvc.errors import InvalidRequest, SpeechsvcError
from speechsvc.redact import parse_redaction
from speechsvc.results.formats import FormatSpec, parse_format
from speechsvc.results.render import render
from speechsvc.service.facade import build_job_request
from speechsvc.service.pipeline import run_pipeline

LONG_FILE_BYTES = 2 * 1024 * 1024  # show a progress bar for files larger than this (or on a terminal)


def add_transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="recordings to transcribe")
    parser.add_argument(
        "--channel-layout",
        default=None,
        help="[stream].channel[,…] to transcribe, e.g. 0,1 (default: every channel)",
    )
    parser.add_argument(
        "--channel-labels", default=None, help="names of the selected channels, e.g. agent,customer"
    )
    parser.add_argument("--format", default="txt", help="xml, json, srt, vtt, txt or html (default: txt)")
    parser.add_argument(
        "--language", default=None, help="ISO-639-1 code or auto (default: auto; en on tiny.en)"
    )
    parser.add_argument("--task", default="transcribe", help="transcribe or translate (default: transcribe)")
    parser.add_argument("--beam-size", default="5", help="beam width 1-10 (default: 5)")
    parser.add_argument("--no-vad", action="store_true", help="decode silence too (default: skip it)")
    parser.add_argument(
        "--crosstalk",
        default="auto",
        choices=("auto", "off"),
        help="auto: don't transcribe a channel's delayed copy of another (default: auto)",
    )
    parser.add_argument(
        "--diarize", action="store_true", help="split each channel by speaker: spk_0, spk_1, … (default: off)"
    )
    parser.add_argument(
        "--num-speakers",
        default=None,
        help="with --diarize: the exact number of speakers (default: estimated)",
    )
    parser.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="CLASSES",
        help="take pci, ssn, numbers and/or pii out of the result (comma-separated or repeated; default: none)",
    )
    parser.add_argument("--redact-sub", default=None, help="with --redact: marker (default) or mask (****)")
    parser.add_argument(
        "--redact-audio",
        default=None,
        metavar="MODE",
        help="with --redact and --output-dir: also write DIR/<name>.redacted.flac, each span a beep or silence",
    )
    parser.add_argument(
        "--media-type", default=None, help="the file's media type (default: from its name), e.g. audio/basic"
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        type=Path,
        help="write each result to DIR/<file name without extension>.<format> (default: print to stdout)",
    )


EXTENSIONS = {"json": "json", "xml": "xml", "srt": "srt", "vtt": "vtt", "txt": "txt", "html": "html"}
# the request's parameters as the CLI names them, for its error messages
FLAGS = {
    "channel_layout": "--channel-layout",
    "channel_labels": "--channel-labels",
    "format": "--format",
    "language": "--language",
    "task": "--task",
    "beam_size": "--beam-size",
    "num_speakers": "--num-speakers",
    "model": "--model",
    "redact": "--redact",
    "redact_sub": "--redact-sub",
    "redact_audio": "--redact-audio",
}


def cli_message(error: SpeechsvcError) -> str:
    """The error as the CLI's user reads it: the flag's name instead of the query parameter's."""
    message = error.message
    for param, flag in FLAGS.items():
        message = re.sub(rf"(?<![\w-]){param}(?![\w])", flag, message)
    named = FLAGS.get(error.param or "")
    return message if named is None or named in message else f"{named}: {message}"


def transcribe_files(config: Config, args: argparse.Namespace) -> int:
    """Transcribe each file and print its result; returns the exit status (1 if any file failed)."""
    try:
        registry = build_registry(config)
    except ValueError as exc:  # a setting the device cannot honour (a compute type the GPU cannot run)
        print(f"speechsvc: {exc}", file=sys.stderr)
        return 2
    pool = FairPool(engine_plan(config).runners, name="cli")
    status = 0
    try:
        request = build_job_request(
            registry,
            config,
            model=None,
            layout=parse_channel_layout(args.channel_layout),
            labels=parse_channel_labels(args.channel_labels),
            language=args.language,
            task=args.task,
            options=decoder_options({"beam_size": args.beam_size, "vad": "false" if args.no_vad else "true"}),
            format=parse_format(args.format),
            callback_url=None,
            userdata=None,
        )
        speakers = {"diarize": "true" if args.diarize else "false", "num_speakers": args.num_speakers or ""}
        redaction = parse_redaction(args.redact, args.redact_sub, args.redact_audio)
        if redaction is not None and redaction.audio is not None and args.output_dir is None:
            raise InvalidRequest(
                "redact_audio writes its copy under --output-dir: give one", param="redact_audio"
            )
        request = dataclasses.replace(
            request, crosstalk=args.crosstalk, speakers=parse_speakers(speakers), redaction=redaction
        )
        transcriber = registry.get()
    except SpeechsvcError as exc:
        print(f"speechsvc: {cli_message(exc)}", file=sys.stderr)
        return 2
    out = Output(request.format, args.output_dir, several=len(args.files) > 1)
    for path in args.files:
        media_type = args.media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        show = sys.stderr.isatty() or path.stat().st_size > LONG_FILE_BYTES
        with tqdm(
            total=100,
            desc=path.name,
            unit="%",
            disable=not show,
            file=sys.stderr,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
        ) as bar:

            def progress(percent: float, bar: tqdm = bar) -> None:
                bar.n = round(percent, 1)
                bar.refresh()

            try:
                result = run_pipeline(
                    path.name,
                    path,
                    media_type,
                    request,
                    transcriber,
                    max_duration_s=config.max_duration_s,
                    max_channels=config.max_channels,
                    limits=config.decode_limits,
                    max_decoded_bytes=config.max_decoded_bytes,
                    scratch_dir=config.spool_dir / f"cli-{os.getpid()}",
                    on_progress=progress,
                    pool=pool,
                    redacted_audio=args.output_dir / f"{path.stem}.redacted.flac"
                    if args.output_dir
                    else None,
                    second_listen=not config.redact_single_pass,
                )
            except SpeechsvcError as exc:
                print(f"speechsvc: {path}: {cli_message(exc)}", file=sys.stderr)
                out.failed(path, exc)
                status = 1
                continue
        out.write(path, result)
    pool.close()
    registry.close()
    return status


class Output:
    """Where each file's result goes: stdout (JSON Lines for json, a header per file for the text formats
    when there are several) or one file per input under --output-dir."""

    def __init__(self, spec: FormatSpec, output_dir: Path | None, *, several: bool) -> None:
        self.spec = spec
        self.format_name = spec.name
        self.output_dir = output_dir
        self.several = several
        self.written: set[Path] = set()
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)

    def write(self, path: Path, result: dict[str, Any]) -> None:
        """The result rendered in the format; JSON Lines on stdout are the document itself, with its file."""
        if self.output_dir is not None:
            target = self._target(path)
            target.write_text(render(result, self.spec), encoding="utf-8")
            print(f"speechsvc: {path} -> {target}", file=sys.stderr)
        elif self.format_name == "json":
            sys.stdout.write(json.dumps({"file": str(path), **result}, ensure_ascii=False) + "\n")
        else:
            if self.several:
                sys.stdout.write(f"==> {path} <==\n")
            rendered = render(result, self.spec)
            sys.stdout.write(rendered if rendered.endswith("\n") else rendered + "\n")
        sys.stdout.flush()

    def failed(self, path: Path, error: SpeechsvcError) -> None:
        """A failed file keeps its place in JSON Lines, as an error line."""
        if self.output_dir is None and self.format_name == "json":
            line = {"file": str(path), "error": {"code": error.code, "message": cli_message(error)}}
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")

    def _target(self, path: Path) -> Path:
        """DIR/<stem>.<ext>; a second input of the same stem (a.wav, a.flac) gets its own extension too."""
        assert self.output_dir is not None
        target = self.output_dir / f"{path.stem}.{EXTENSIONS[self.format_name]}"
        if target in self.written:
            target = self.output_dir / f"{path.name}.{EXTENSIONS[self.format_name]}"
        self.written.add(target)
        return target

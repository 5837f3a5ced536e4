"""`speechsvc transcribe FILE…`: the service's pipeline, offline, one shot."""

from __future__ import annotations

import argparse
import dataclasses
import mimetypes
import os
import sys
from pathlib import Path

from tqdm import tqdm

from speechsvc.api.params import decoder_options, parse_speakers
from speechsvc.app import build_registry, engine_plan
from speechsvc.asr.scheduler import FairPool
from speechsvc.audio.layout import parse_channel_labels, parse_channel_layout
from speechsvc.config import Config
from speechsvc.errors import SpeechsvcError
from speechsvc.results.formats import parse_format
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
        "--media-type", default=None, help="the file's media type (default: from its name), e.g. audio/basic"
    )


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
        request = dataclasses.replace(request, crosstalk=args.crosstalk, speakers=parse_speakers(speakers))
        transcriber = registry.get()
    except SpeechsvcError as exc:
        print(f"speechsvc: {exc.message}", file=sys.stderr)
        return 2
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
                )
            except SpeechsvcError as exc:
                print(f"speechsvc: {path}: {exc.message}", file=sys.stderr)
                status = 1
                continue
        sys.stdout.write(render(result, request.format))
    pool.close()
    registry.close()
    return status

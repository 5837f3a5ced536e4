import argparse

import pytest

from speechsvc.audio.media import AAC, MP3, MULAW, WAV, sniff_demuxer
from speechsvc.config import Config, add_config_arguments, build_config


@pytest.mark.parametrize(
    ("head", "media_type", "expected"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav", WAV),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "application/octet-stream", WAV),  # detected, not trusted
        (b"ID3\x04\x00", "audio/wav", MP3),
        (b"\xff\xfb\x90\x00", "audio/mpeg", MP3),
        (b"\xff\xf1\x50\x80", "audio/aac", AAC),
        (b"\xff\xff\xff\xff\xff", "audio/basic", MULAW),  # mu-law silence is not an MPEG sync word
        (b"\xff\xff\xff\xff\xff", "application/octet-stream", None),
        (b"#EXTM3U\n#EXT-X-", "application/octet-stream", None),  # playlists are never opened
        (b"ffconcat version 1.0", "audio/wav", None),
        (b"hello world", "audio/wav", None),
    ],
)
def test_sniff_demuxer(head: bytes, media_type: str, expected: str | None) -> None:
    assert sniff_demuxer(head, media_type) == expected


def test_config_flags_then_env_then_defaults() -> None:
    env = {"SPEECHSVC_PORT": "9000", "SPEECHSVC_MODEL": "base", "SPEECHSVC_CALLBACK_DENY_PRIVATE": "true"}
    config = build_config({"port": "9100", "max_upload_bytes": None}, env)
    assert config.port == 9100  # flag wins
    assert config.model == "base"  # environment next
    assert config.callback_deny_private is True
    assert config.max_upload_bytes == Config().max_upload_bytes  # default last


@pytest.mark.parametrize(
    "bad",
    [
        {"device": "tpu"},
        {"workers": "-1"},
        {"batch_size": "-1"},
        {"max_upload_bytes": "0"},
        {"device_index": "a"},
        {"device_index": "0,-1"},
        {"device_index": ""},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        build_config(bad, {})


def test_device_index_lists_gpus() -> None:
    assert build_config({}, {"SPEECHSVC_DEVICE_INDEX": "0,1"}).device_indexes == (0, 1)
    assert build_config({"device_index": "2"}, {}).device_indexes == (2,)
    assert Config().device_indexes == (0,)


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]


def test_redact_single_pass_is_a_setting() -> None:
    assert build_config({}, {}).redact_single_pass is False
    assert build_config({}, {"SPEECHSVC_REDACT_SINGLE_PASS": "true"}).redact_single_pass is True
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    assert build_config(parser.parse_args(["--redact-single-pass"]), {}).redact_single_pass is True

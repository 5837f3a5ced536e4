import json
import re
import xml.etree.ElementTree as ET

import pytest

from speechsvc.errors import InvalidRequest
from speechsvc.results.canonical import merge_timeline, talk_stats
from speechsvc.results.formats import FormatSpec, parse_format
from speechsvc.results.render import render

SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"
VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"


def word(start: float, end: float, text: str) -> dict[str, object]:
    return {"start": start, "end": end, "word": text, "confidence": 0.9}


def two_channel_result() -> dict[str, object]:
    agent_words = [word(0.0, 0.5, " Hello,"), word(0.5, 1.0, " thanks"), word(1.0, 1.4, " for"),
                   word(1.4, 2.0, " calling"), word(2.0, 2.6, " support.")]  # fmt: skip
    channels = [
        {"stream": 0, "channel": 0, "label": "agent", "language": "en", "language_probability": 1.0,
         "duration_s": 6.0, "speech_s": 3.0,
         "segments": [{"start": 0.0, "end": 2.6, "text": "Hello, thanks for calling support.",
                       "words": agent_words}]},
        {"stream": 0, "channel": 1, "label": "customer", "language": "en", "language_probability": 1.0,
         "duration_s": 6.0, "speech_s": 3.0,
         "segments": [{"start": 2.0, "end": 4.0, "text": "Hi, my line is down.", "words": []}]},
    ]  # fmt: skip
    timeline = merge_timeline(channels)
    return {"request_id": "r1", "status": "Completed", "model": "tiny.en", "duration_s": 6.0,
            "channels": channels, "timeline": timeline, "text": "x", "stats": talk_stats(channels)}  # fmt: skip


def test_timeline_is_in_time_order_across_channels() -> None:
    result = two_channel_result()
    assert [(e["label"], e["start"]) for e in result["timeline"]] == [("agent", 0.0), ("customer", 2.0)]


def test_talk_time_and_overlap() -> None:
    stats = two_channel_result()["stats"]
    assert stats == {"talk_time_s": {"agent": 2.6, "customer": 2.0}, "overlap_s": 0.6}


def test_overlap_counts_union_not_sum() -> None:
    channels = [
        {"label": "a", "segments": [{"start": 0.0, "end": 2.0}, {"start": 1.0, "end": 3.0}]},
        {"label": "b", "segments": [{"start": 2.5, "end": 5.0}]},
    ]
    assert talk_stats(channels) == {"talk_time_s": {"a": 3.0, "b": 2.5}, "overlap_s": 0.5}


def test_xml_is_well_formed_with_apptek_elements() -> None:
    root = ET.fromstring(render(two_channel_result(), FormatSpec("xml")).encode())
    assert root.tag == "recording"
    segments = root.findall("segment")
    assert [s.get("speaker") for s in segments] == ["agent", "customer"]
    assert {k: segments[0].get(k) for k in ("start", "end", "stream", "channel")} == {
        "start": "0.000",
        "end": "2.600",
        "stream": "0",
        "channel": "0",
    }
    items = segments[0].findall("traceback/item")
    kinds = [(i.get("type"), i.findtext("orth")) for i in items]
    assert kinds[:3] == [("pronunciation", "Hello"), ("punctuation", ","), ("pronunciation", "thanks")]
    assert kinds[-1] == ("punctuation", ".")
    first = items[0]
    assert first.find("samples").attrib == {"start": "0.000", "end": "0.500"}
    assert first.findtext("confidence") == "0.900"
    # a segment without word times still gets items, timed by the segment
    customer_items = segments[1].findall("traceback/item")
    assert customer_items[0].findtext("orth") == "Hi"
    assert customer_items[0].find("samples").get("start") == "2.000"


def test_xml_escapes_text() -> None:
    result = two_channel_result()
    result["channels"][0]["label"] = 'a"<&>'
    result["channels"][0]["segments"][0]["words"] = [word(0, 1, " <b>&")]
    root = ET.fromstring(render(result, FormatSpec("xml")).encode())
    assert root.find("segment").get("speaker") == 'a"<&>'


def srt_blocks(text: str) -> list[list[str]]:
    return [block.splitlines() for block in text.strip().split("\n\n")]


def test_srt_cue_syntax_and_speakers() -> None:
    blocks = srt_blocks(render(two_channel_result(), FormatSpec("srt")))
    assert [b[0] for b in blocks] == ["1", "2"]
    for block in blocks:
        assert re.fullmatch(rf"{SRT_TIME} --> {SRT_TIME}", block[1])
    assert blocks[0][2] == "[agent] Hello, thanks for calling support."
    assert blocks[1][2] == "[customer] Hi, my line is down."


def test_vtt_header_and_voice_tags() -> None:
    text = render(two_channel_result(), FormatSpec("vtt"))
    assert text.startswith("WEBVTT\n\n")
    cues = [c.splitlines() for c in text.split("\n\n")[1:] if c.strip()]
    assert re.fullmatch(rf"{VTT_TIME} --> {VTT_TIME}", cues[0][0])
    assert cues[0][1] == "<v agent>Hello, thanks for calling support."


def cue_blocks(text: str, name: str) -> list[tuple[str, list[str]]]:
    """(timing line, text lines) of each cue."""
    blocks = [b.splitlines() for b in text.strip().split("\n\n") if not b.startswith("WEBVTT")]
    return [(b[1], b[2:]) if name == "srt" else (b[0], b[1:]) for b in blocks]


def seconds(stamp: str) -> float:
    h, m, s, ms = re.fullmatch(r"(\d\d):(\d\d):(\d\d)[,.](\d{3})", stamp).groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


@pytest.mark.parametrize("name", ["srt", "vtt"])
def test_line_controls_split_cues(name: str) -> None:
    spec = parse_format(f"{name},max_lines:1,line_char_limit:20")
    cues = cue_blocks(render(two_channel_result(), spec), name)
    speakers: dict[str, list[str]] = {"agent": [], "customer": []}
    agent_word_starts = {0.0, 0.5, 1.0, 1.4, 2.0}
    for timing, lines in cues:
        assert len(lines) == 1  # max_lines
        tag = re.match(r"^\[(\w+)\] " if name == "srt" else r"^<v (\w+)>", lines[0])
        assert tag is not None, lines  # every cue names its speaker, split pieces too
        visible = lines[0] if name == "srt" else lines[0][tag.end() :]
        assert len(visible) <= 20, visible  # line_char_limit (SRT's tag is visible text)
        speakers[tag.group(1)].append(lines[0][tag.end() :])
        start = seconds(timing.split(" --> ")[0])
        if tag.group(1) == "agent":
            assert start in agent_word_starts  # split on word times
    assert " ".join(speakers["agent"]) == "Hello, thanks for calling support."
    assert " ".join(speakers["customer"]) == "Hi, my line is down."
    assert len(cues) > 2  # something was split


def test_txt_and_json() -> None:
    result = two_channel_result()
    assert render(result, FormatSpec("txt")) == "x\n"
    assert json.loads(render(result, FormatSpec("json"))) == result


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, FormatSpec("xml")),
        ("json", FormatSpec("json")),
        ("srt,max_lines:2,line_char_limit:32", FormatSpec("srt", 2, 32)),
        ("VTT,line_char_limit:40", FormatSpec("vtt", None, 40)),
    ],
)
def test_parse_format(text: str | None, expected: FormatSpec) -> None:
    assert parse_format(text) == expected


@pytest.mark.parametrize(
    "text", ["pdf", "srt,max_lines", "srt,max_lines:0", "srt,lines:2", "srt,max_lines:x"]
)
def test_parse_format_rejects(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_format(text)


def test_html_page_turns_chart_and_marked_words() -> None:
    result = two_channel_result()
    first = result["channels"][0]["segments"][0]  # type: ignore[index]
    first["words"][0]["confidence"] = 0.2
    first["words"][-1]["word"] = " <script>alert(1)</script>"
    page = render(result, parse_format("html"))  # type: ignore[arg-type]
    assert page.startswith("<!doctype html>") and "<script>" not in page and "&lt;script&gt;" in page
    assert page.count('class="turn') == sum(len(c["segments"]) for c in result["channels"])  # type: ignore[attr-defined]
    assert re.search(r'<mark class="low" title="confidence 0.20">', page)
    assert "<svg" in page and "overlap" in page and "agent" in page and "customer" in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained: no external asset

"""`format=html`: one self-contained page of a result for people who review calls: the conversation as
chat turns by speaker with times, talk time per speaker and overlap as an inline SVG chart, and words the
model was unsure of marked. No script, no external asset: it opens offline and can be mailed."""

from __future__ import annotations

from html import escape
from typing import Any

from speechsvc.results.canonical import Result, speaker_name

LOW_CONFIDENCE = 0.5  # words below this are marked for the reviewer
COLOURS = ("#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2")
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:52rem;padding:1.5rem;color:#111}
h1{font-size:1.25rem;margin:0 0 .25rem} .meta{color:#555;font-size:.85rem;margin-bottom:1rem}
.turn{margin:.5rem 0;max-width:80%;padding:.5rem .75rem;border-radius:.75rem;background:#f3f4f6}
.turn.right{margin-left:auto;background:#eef2ff} .who{font-weight:600;font-size:.8rem}
.when{color:#666;font-size:.75rem;margin-left:.5rem} mark.low{background:#fde68a;border-radius:.2rem}
.legend{font-size:.8rem;color:#555} svg text{font:12px system-ui,sans-serif}
.warning{background:#fef2f2;border-left:4px solid #dc2626;padding:.5rem .75rem;margin:.5rem 0;font-size:.85rem}
"""


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def _words(segment: dict[str, Any]) -> str:
    if not segment.get("words"):
        return escape(segment["text"].strip())
    parts = []
    for word in segment["words"]:
        text = escape(word["word"])
        if word.get("confidence", 1.0) < LOW_CONFIDENCE:
            tip = f"confidence {word['confidence']:.2f}"
            text = f'<mark class="low" title="{tip}">{text.strip()}</mark>'
            text = (" " if word["word"].startswith(" ") else "") + text
        parts.append(text)
    return "".join(parts).strip()


def _chart(talk: dict[str, float], overlap_s: float, colours: dict[str, str]) -> str:
    """Talk time per speaker and the overlap, as horizontal bars."""
    rows = [*talk.items(), ("overlap", overlap_s)]
    longest = max([seconds for _, seconds in rows] + [0.001])
    bar_w, row_h = 360, 24
    parts = [
        f'<svg role="img" aria-label="talk time" width="{bar_w + 220}" height="{row_h * len(rows) + 4}">'
    ]
    for number, (name, seconds) in enumerate(rows):
        y = number * row_h + 2
        width = round(bar_w * seconds / longest, 1)
        colour = colours.get(name, "#9ca3af")
        parts.append(f'<text x="0" y="{y + 15}">{escape(name)}</text>')
        parts.append(f'<rect x="110" y="{y}" width="{width}" height="{row_h - 6}" rx="3" fill="{colour}"/>')
        parts.append(f'<text x="{116 + width}" y="{y + 15}">{seconds:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: Result) -> str:
    """The result as a page (UTF-8 HTML5)."""
    channels = result["channels"]
    multi = len(channels) > 1
    turns = sorted(
        ((segment["start"], segment["end"], speaker_name(channel, segment, multi=multi) or channel["label"],
          segment) for channel in channels for segment in channel["segments"]),
        key=lambda turn: (turn[0], turn[1]),
    )  # fmt: skip
    labels: list[str] = [channel["label"] for channel in channels] if not turns else []
    for _, _, label, _ in turns:  # the speakers in order of first appearance, each with its colour
        if label not in labels:
            labels.append(label)
    colours = {label: COLOURS[number % len(COLOURS)] for number, label in enumerate(labels)}
    body = []
    for start, end, label, segment in turns:
        side = "right" if labels.index(label) % 2 else "left"
        body.append(
            f'<div class="turn {side}" style="border-left:4px solid {colours[label]}">'
            f'<span class="who" style="color:{colours[label]}">{escape(label)}</span>'
            f'<span class="when">{_clock(start)}–{_clock(end)}</span><div class="said">{_words(segment)}</div></div>'
        )
    warnings = "".join(
        f'<p class="warning">Speech without text on {escape(str(channel["label"]))}: '
        + ", ".join(f"{_clock(gap['start'])}–{_clock(gap['end'])}" for gap in channel["gaps"])
        + " (heard as speech, decoded twice, no words found).</p>"
        for channel in channels
        if channel.get("gaps")
    )
    stats = result.get("stats", {})
    talk = {name: float(seconds) for name, seconds in stats.get("talk_time_s", {}).items()}
    title = f"Call {escape(str(result.get('request_id', '')))}"
    duration = float(result.get("duration_s", 0.0))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head><body>'
        f'<h1>{title}</h1><div class="meta">{_clock(duration)} · model {escape(str(result.get("model", "")))}'
        f" · {len(channels)} channel(s) · status {escape(str(result.get('status', '')))}</div>"
        f'<section id="talk">{_chart(talk, float(stats.get("overlap_s", 0.0)), colours)}'
        f'<div class="legend">Talk time per speaker, and speech of both at once (overlap). '
        f'<mark class="low">Marked</mark> words: confidence below {LOW_CONFIDENCE}.</div></section>'
        f'{warnings}<section id="conversation">{"".join(body) or "<p>No speech.</p>"}</section></body></html>\n'
    )

"""The channel layout `[stream].channel[,[stream].channel]` (API.md §1) and its resolution against a file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from speechsvc.errors import ChannelOutOfRange, InvalidChannelLayout, InvalidRequest

# ASCII digits, a few of them: `\d` would take any Unicode digit, and an index needs no more than 4.
_TOKEN = re.compile(r"(?:([0-9]{1,4})\.)?([0-9]{1,4})", re.ASCII)
MAX_LABEL_CHARS = 64
# No file the service accepts has more selectable channels than this (--max-channels is checked later,
# against the file); the cap keeps parsing of a hostile 64 KB layout to microseconds.
MAX_LAYOUT_ENTRIES = 256
MAX_LAYOUT_CHARS = MAX_LAYOUT_ENTRIES * 10


@dataclass(frozen=True, order=True)
class ChannelRef:
    """One selected channel: zero-based audio stream index and channel index within it."""

    stream: int
    channel: int

    @property
    def token(self) -> str:
        return f"{self.stream}.{self.channel}"


@dataclass(frozen=True)
class SelectedChannel:
    ref: ChannelRef
    label: str


def parse_channel_layout(text: str | None) -> tuple[ChannelRef, ...] | None:
    """Parse a channel_layout value; None (or blank) means every channel of every audio stream."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_LAYOUT_CHARS or text.count(",") >= MAX_LAYOUT_ENTRIES:
        raise InvalidChannelLayout(
            f"channel_layout selects more than {MAX_LAYOUT_ENTRIES} channels", param="channel_layout"
        )
    refs: list[ChannelRef] = []
    seen: set[ChannelRef] = set()  # a set: the duplicate check stays linear
    for raw in text.split(","):
        match = _TOKEN.fullmatch(raw.strip())
        if match is None:
            raise InvalidChannelLayout(
                f"channel_layout token {raw.strip()!r} is not [stream].channel with zero-based "
                "non-negative integers",
                param="channel_layout",
            )
        ref = ChannelRef(int(match.group(1) or 0), int(match.group(2)))
        if ref in seen:
            raise InvalidChannelLayout(f"channel_layout selects {ref.token} twice", param="channel_layout")
        seen.add(ref)
        refs.append(ref)
    return tuple(refs)


def parse_channel_labels(text: str | None) -> tuple[str, ...] | None:
    """Parse channel_labels: a comma list naming the selected channels in order."""
    if text is None or not text.strip():
        return None
    if text.count(",") >= MAX_LAYOUT_ENTRIES:
        raise InvalidRequest(
            f"channel_labels names more than {MAX_LAYOUT_ENTRIES} channels", param="channel_labels"
        )
    labels = tuple(label.strip() for label in text.split(","))
    for label in labels:
        if not label or len(label) > MAX_LABEL_CHARS:
            raise InvalidRequest(
                f"each channel label must be 1 to {MAX_LABEL_CHARS} characters", param="channel_labels"
            )
    if len(set(labels)) != len(labels):
        raise InvalidRequest("channel_labels must be distinct", param="channel_labels")
    return labels


def resolve_selection(
    layout: Sequence[ChannelRef] | None,
    labels: Sequence[str] | None,
    stream_channels: Sequence[int],
) -> tuple[SelectedChannel, ...]:
    """Check the layout against the channel count of each audio stream and attach labels.

    stream_channels[i] is the channel count of audio stream i.
    """
    if layout is None:
        refs = [ChannelRef(s, c) for s, count in enumerate(stream_channels) for c in range(count)]
    else:
        refs = list(layout)
        for ref in refs:
            if ref.stream >= len(stream_channels):
                raise ChannelOutOfRange(
                    f"channel_layout selects stream {ref.stream}, but the file has "
                    f"{len(stream_channels)} audio stream(s)",
                    param="channel_layout",
                )
            if ref.channel >= stream_channels[ref.stream]:
                raise ChannelOutOfRange(
                    f"channel_layout selects channel {ref.channel} of stream {ref.stream}, which has "
                    f"{stream_channels[ref.stream]} channel(s)",
                    param="channel_layout",
                )
    if labels is not None and len(labels) != len(refs):
        raise InvalidRequest(
            f"channel_labels names {len(labels)} channel(s) but {len(refs)} are selected",
            param="channel_labels",
        )
    names = labels if labels is not None else [ref.token for ref in refs]
    return tuple(SelectedChannel(ref, name) for ref, name in zip(refs, names, strict=True))

import pytest

from speechsvc.audio.layout import ChannelRef, parse_channel_labels, parse_channel_layout, resolve_selection
from speechsvc.errors import ChannelOutOfRange, InvalidChannelLayout, InvalidRequest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", (ChannelRef(0, 0),)),
        ("0,1", (ChannelRef(0, 0), ChannelRef(0, 1))),
        ("1.0", (ChannelRef(1, 0),)),
        ("0.1,1.0", (ChannelRef(0, 1), ChannelRef(1, 0))),
        (" 0 , 1.1 ", (ChannelRef(0, 0), ChannelRef(1, 1))),
        ("12", (ChannelRef(0, 12),)),
    ],
)
def test_parse_valid_layouts(text: str, expected: tuple[ChannelRef, ...]) -> None:
    assert parse_channel_layout(text) == expected


@pytest.mark.parametrize("text", [None, "", "   "])
def test_absent_layout_means_everything(text: str | None) -> None:
    assert parse_channel_layout(text) is None


@pytest.mark.parametrize(
    "text", ["-1", "0,-1", "a", "0,,1", "0.", ".0", "0.0.0", "1.-1", "0;1", "0,", "one", "0x1", "1e1", "²"]
)
def test_parse_junk_is_rejected(text: str) -> None:
    with pytest.raises(InvalidChannelLayout) as info:
        parse_channel_layout(text)
    assert info.value.status == 400
    assert info.value.code == "invalid_channel_layout"


@pytest.mark.parametrize("text", ["0,0", "1,0.1", "0.0,0"])
def test_duplicates_are_rejected(text: str) -> None:
    with pytest.raises(InvalidChannelLayout, match="twice"):
        parse_channel_layout(text)


def test_resolve_all_channels_of_all_streams_with_default_labels() -> None:
    selection = resolve_selection(None, None, [2, 1])
    assert [(s.ref, s.label) for s in selection] == [
        (ChannelRef(0, 0), "0.0"),
        (ChannelRef(0, 1), "0.1"),
        (ChannelRef(1, 0), "1.0"),
    ]


def test_resolve_keeps_layout_order_and_labels() -> None:
    selection = resolve_selection((ChannelRef(0, 1), ChannelRef(0, 0)), ("customer", "agent"), [2])
    assert [(s.ref.channel, s.label) for s in selection] == [(1, "customer"), (0, "agent")]


@pytest.mark.parametrize(("layout", "streams"), [((ChannelRef(0, 2),), [2]), ((ChannelRef(1, 0),), [2])])
def test_out_of_range_is_422(layout: tuple[ChannelRef, ...], streams: list[int]) -> None:
    with pytest.raises(ChannelOutOfRange) as info:
        resolve_selection(layout, None, streams)
    assert info.value.status == 422


def test_label_count_must_match() -> None:
    with pytest.raises(InvalidRequest, match="names 1 channel"):
        resolve_selection(None, ("agent",), [2])


@pytest.mark.parametrize("text", ["a,a", "a,", "x" * 65])
def test_bad_labels(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_channel_labels(text)

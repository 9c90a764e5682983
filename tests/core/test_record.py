"""Listing previews: nanobot's rule (collapse white space, strip, cut at 120) on any text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from nanosession.record import PREVIEW_CHARS, preview_of, preview_text


def reference(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:PREVIEW_CHARS]


pieces = st.sampled_from(["a", "bc", " ", "\n", "\t\t", "é", "\u3000", "🙂", "x" * 50,
                          " " * 300, "\r\n"])


@settings(max_examples=2000, deadline=None)
@given(parts=st.lists(pieces, max_size=60))
def test_preview_collapses_only_a_prefix_yet_equals_collapsing_everything(
    parts: list[str],
) -> None:
    text = "".join(parts)
    assert preview_text(text) == reference(text)


def test_a_huge_first_message_previews_like_a_short_one() -> None:
    text = "  Please   summarise\n\nthis:  " + "word " * 200_000
    assert preview_of([{"role": "user", "content": text}]) == reference(text)
    assert len(preview_text(text)) == PREVIEW_CHARS


def test_user_text_wins_over_assistant_text_and_blocks_count() -> None:
    messages = [
        {"role": "assistant", "content": "  hello  there "},
        {"role": "user", "content": [{"type": "text", "text": " from\tblocks "}]},
    ]
    assert preview_of(messages) == "from blocks"
    assert preview_of(messages[:1]) == "hello there"
    assert preview_of([{"role": "user", "content": "   "}]) is None

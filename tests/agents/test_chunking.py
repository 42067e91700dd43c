"""Splitting long sources: boundaries, overlap, nothing lost; the token budget."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_localfirst import InvalidRequest
from llm_localfirst.agents.chunking import Budget, estimate_tokens, pack, split_text
from tests.agents.conftest import long_text


def test_text_that_fits_is_one_chunk() -> None:
    assert split_text("One. Two.\n\nThree.", 100) == ["One. Two.\n\nThree."]


def test_blank_text_is_no_chunks() -> None:
    assert split_text("  \n\n \n", 10) == []


def test_chunks_break_at_paragraphs_before_sentences() -> None:
    text = "Alpha one. Alpha two.\n\nBeta one. Beta two.\n\nGamma one."
    assert split_text(text, 25) == ["Alpha one. Alpha two.", "Beta one. Beta two.", "Gamma one."]


def test_a_long_paragraph_breaks_at_sentence_ends() -> None:
    text = "First sentence here. Second sentence here! Third one here? Fourth."
    chunks = split_text(text, 45)
    assert chunks == ["First sentence here. Second sentence here!", "Third one here? Fourth."]


def test_a_word_longer_than_a_chunk_is_cut() -> None:
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_neighbouring_chunks_overlap_by_whole_sentences() -> None:
    sentences = [f"Sentence number {i} is here." for i in range(12)]
    chunks = split_text(" ".join(sentences), 100, overlap_chars=40)
    assert len(chunks) > 2
    for before, after in itertools.pairwise(chunks):
        last = re.findall(r"Sentence number \d+ is here\.", before)[-1]
        assert after.startswith(last)  # the boundary sentence is seen whole twice


def test_overlap_never_stalls_progress() -> None:
    chunks = split_text("a b c d e f g h i j", 3, overlap_chars=100)
    assert " ".join(chunks).split()[-1] == "j" and len(chunks) < 20


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab .!?\n")), max_size=400),
    max_chars=st.integers(1, 60),
    overlap=st.integers(0, 40),
)
def test_chunks_respect_the_limit_and_keep_every_word_in_order(
    text: str, max_chars: int, overlap: int
) -> None:
    chunks = split_text(text, max_chars, overlap_chars=overlap)
    assert all(0 < len(c) <= max_chars for c in chunks)
    if overlap == 0:
        assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())
    else:  # every word (or word piece) still appears, in order
        joined = " ".join(chunks)
        for word in text.split():
            assert word[:max_chars] in joined


def test_a_realistic_document_is_covered_completely() -> None:
    text = long_text(20, 6)
    chunks = split_text(text, 600, overlap_chars=60)
    for sentence in re.findall(r"Paragraph \d+ sentence \d+ says[^.]*\.", text):
        assert any(sentence in c for c in chunks)


def test_pack_groups_consecutive_parts_within_the_limit() -> None:
    assert pack(["aaaa", "bb", "cc", "dddddddd", "e"], 8) == [
        ["aaaa", "bb"],
        ["cc"],
        ["dddddddd"],
        ["e"],
    ]


def test_token_estimate_is_chars_over_four_rounded_up() -> None:
    assert [estimate_tokens("x" * n) for n in (0, 1, 4, 5)] == [0, 1, 1, 2]


def test_budget_keeps_room_for_prompt_and_output() -> None:
    budget = Budget.for_window(2048, None)
    assert budget.output == 512 and budget.partial_output <= budget.output
    room = budget.source_tokens("p" * 400)
    assert room + budget.output + 100 <= 2048


def test_max_tokens_that_fill_the_window_are_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        Budget.for_window(1024, 1000)
    assert info.value.param == "max_tokens"


def test_a_prompt_that_fills_the_window_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no room for the source"):
        Budget.for_window(1024, None).source_tokens("t" * 4000)

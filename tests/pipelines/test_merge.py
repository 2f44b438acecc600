"""Tests for pipelines.merge.assign_speakers: hand cases, properties and scaling."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.merge import DEFAULT_SPEAKER, assign_speakers
from pipelines.text import is_cjk
from pipelines.types import SpeakerTurn, Word


def w(start: float, end: float, text: str, p: float = 0.9) -> Word:
    return Word(start=start, end=end, text=text, probability=p)


def t(start: float, end: float, speaker: str) -> SpeakerTurn:
    return SpeakerTurn(start=start, end=end, speaker=speaker)


def test_two_speakers_english() -> None:
    words = [
        w(0.0, 0.4, " Hello?"),
        w(0.6, 1.0, " Hello?"),
        w(1.1, 1.5, " Oh,"),
        w(1.5, 1.8, " hi."),
    ]
    turns = [t(0.0, 0.5, "A"), t(0.55, 1.05, "B"), t(1.05, 2.0, "A")]
    segs = assign_speakers(words, turns, language="en")
    assert [(s.speaker, s.text) for s in segs] == [
        ("A", "Hello?"),
        ("B", "Hello?"),
        ("A", "Oh, hi."),
    ]
    assert segs[2].start == 1.1 and segs[2].end == 1.8


def test_chinese_text_has_no_spaces_and_mixed_english_is_kept() -> None:
    words = [
        w(0.0, 0.3, "我们"),
        w(0.3, 0.5, "用"),
        w(0.5, 0.9, "MoE"),
        w(0.9, 1.2, "架构"),
        w(1.2, 1.4, "。"),
        w(1.5, 1.8, " It"),
        w(1.8, 2.0, " works."),
    ]
    (seg,) = assign_speakers(words, [t(0, 3, "SPEAKER_01")], language="zh")
    assert seg.text == "我们用MoE架构。It works."
    assert seg.language == "zh"


def test_segment_language_follows_content_in_mixed_interview() -> None:
    words = [w(0.0, 0.5, "你好"), w(0.5, 0.7, "。"), w(3.0, 3.3, " Thank"), w(3.3, 3.6, " you.")]
    segs = assign_speakers(words, [t(0, 4, "A")], language="zh")
    assert [s.language for s in segs] == ["zh", "en"]


def test_no_turns_gives_default_speaker() -> None:
    segs = assign_speakers([w(0, 1, " a"), w(1, 2, " b")], [], language="en")
    assert [s.speaker for s in segs] == [DEFAULT_SPEAKER]
    assert DEFAULT_SPEAKER == "SPEAKER_00"


def test_empty_words() -> None:
    assert assign_speakers([], [t(0, 1, "A")], language="en") == ()


def test_word_in_gap_gets_nearest_turn() -> None:
    turns = [t(0.0, 1.0, "A"), t(5.0, 6.0, "B")]
    segs = assign_speakers(
        [w(1.2, 1.4, "near-a"), w(4.5, 4.8, "near-b")], turns, language="en", max_pause=10
    )
    assert [(s.speaker, s.text) for s in segs] == [("A", "near-a"), ("B", "near-b")]


def test_word_after_last_turn_and_before_first() -> None:
    turns = [t(2.0, 3.0, "A"), t(3.0, 4.0, "B")]
    segs = assign_speakers([w(0.0, 0.5, "x"), w(9.0, 9.5, "y")], turns, language="en")
    assert [s.speaker for s in segs] == ["A", "B"]


def test_word_goes_to_largest_overlap_with_overlapping_turns() -> None:
    turns = [t(0.0, 1.3, "A"), t(1.0, 3.0, "B")]
    segs = assign_speakers([w(1.1, 1.9, "mostly-b"), w(0.2, 0.8, "a")], turns, language="en")
    assert [(s.speaker, s.text) for s in segs] == [("A", "a"), ("B", "mostly-b")]


def test_long_turn_spanning_many_turns_of_other_speaker() -> None:
    # A long turn overlaps all short ones: each word still picks its best overlap.
    turns = [t(0, 100, "LONG")] + [t(i, i + 0.9, "S") for i in range(0, 100, 10)]
    words = [w(i + 0.1, i + 0.8, f"s{i}") for i in range(0, 100, 10)]
    words += [w(i + 5.0, i + 5.5, f"l{i}") for i in range(0, 100, 10)]
    segs = assign_speakers(words, turns, language="en")
    for seg in segs:
        for word in seg.words:
            assert seg.speaker == ("S" if word.text.startswith("s") else "LONG")


def test_zero_and_negative_duration_and_unsorted_input() -> None:
    words = [w(2.0, 2.0, " c"), w(1.5, 1.0, " b"), w(0.0, 0.5, " a")]
    segs = assign_speakers(words, [t(0, 1.2, "A"), t(1.2, 3, "B")], language="en")
    assert [s.text for s in segs] == ["a b", "c"] or [s.text for s in segs] == ["a", "b c"]
    for seg in segs:
        for word in seg.words:
            assert seg.start <= word.start <= word.end <= seg.end


def test_zero_length_word_at_turn_start() -> None:
    segs = assign_speakers([w(5.0, 5.0, "x")], [t(0, 1, "A"), t(5, 6, "B")], language="en")
    assert segs[0].speaker == "B"


def test_split_at_pause() -> None:
    segs = assign_speakers(
        [w(0, 1, "a"), w(2.5, 3, "b")], [t(0, 3, "A")], language="en", max_pause=1.0
    )
    assert [s.text for s in segs] == ["a", "b"]


def test_long_run_splits_at_sentence_end_after_soft_length() -> None:
    words = []
    clock = 0.0
    for i in range(40):  # 40 sentences of 4 words, 0.25 s each: 40 s, no pauses
        for j in range(4):
            text = f" w{i}_{j}" + ("." if j == 3 else "")
            words.append(w(clock, clock + 0.25, text))
            clock += 0.25
    segs = assign_speakers(words, [t(0, clock, "A")], language="en", max_segment_seconds=30)
    assert len(segs) > 1
    for seg in segs:
        assert seg.end - seg.start <= 30
        assert seg.text.endswith(".")


def test_max_length_without_punctuation_cuts_at_longest_pause() -> None:
    words = [w(i * 0.5, i * 0.5 + 0.4, f"x{i}") for i in range(100)]  # 50 s
    words[30] = w(15.0, 15.1, "x30")  # a 0.4 s pause after it, the longest
    segs = assign_speakers(words, [t(0, 60, "A")], language="en", max_segment_seconds=20)
    assert all(s.end - s.start <= 20 for s in segs)
    assert segs[0].words[-1].text == "x30"


def test_single_word_longer_than_max_is_kept() -> None:
    segs = assign_speakers(
        [w(0, 40, "long"), w(40, 41, "next")],
        [t(0, 41, "A")],
        language="en",
        max_segment_seconds=30,
    )
    assert [s.text for s in segs] == ["long", "next"]


# --- properties ----------------------------------------------------------------------

times = st.floats(min_value=0, max_value=500, allow_nan=False, allow_infinity=False)


@st.composite
def words_and_turns(draw: st.DrawFn) -> tuple[list[Word], list[SpeakerTurn]]:
    n = draw(st.integers(0, 60))
    words = []
    for i in range(n):
        a, b = draw(times), draw(st.floats(-1, 5, allow_nan=False))
        punct = draw(st.sampled_from(["", "", "", ".", "。", ","]))
        words.append(w(a, a + b, f"{'中' if i % 3 == 0 else ' w'}{i}{punct}"))
    turns = [
        t(draw(times), draw(times), draw(st.sampled_from(["A", "B", "C"])))
        for _ in range(draw(st.integers(0, 15)))
    ]
    return words, turns


@settings(max_examples=300, deadline=None)
@given(data=words_and_turns(), max_pause=st.floats(0.1, 5), max_len=st.floats(1, 40))
def test_properties(
    data: tuple[list[Word], list[SpeakerTurn]], max_pause: float, max_len: float
) -> None:
    words, turns = data
    segs = assign_speakers(
        words, turns, language="en", max_pause=max_pause, max_segment_seconds=max_len
    )
    out_words = [x for s in segs for x in s.words]
    # No word lost or duplicated (texts are unique).
    assert sorted(x.text for x in out_words) == sorted(x.text for x in words)
    assert sorted(c for s in segs for c in s.text if c != " ") == sorted(
        c for x in words for c in x.text if c != " "
    )
    speakers = {x.speaker for x in turns} or {DEFAULT_SPEAKER}
    for prev, nxt in itertools.pairwise(segs):
        assert prev.start <= nxt.start
        assert prev.end <= nxt.start  # no overlap
    for s in segs:
        assert s.words
        assert s.speaker in speakers
        assert s.start <= s.end
        for x in s.words:
            assert s.start <= x.start <= x.end <= s.end
        if len(s.words) > 1:
            assert s.end - s.start <= max_len + 1e-9
        # Spaces only between non-CJK tokens.
        for i, c in enumerate(s.text):
            if c == " ":
                assert not is_cjk(s.text[i - 1]) and not is_cjk(s.text[i + 1])
                assert s.text[i + 1] == "w"  # only where a token had a leading space


def _naive_best_overlap(word: Word, turns: list[SpeakerTurn]) -> dict[str, float]:
    """Oracle: per speaker, the largest overlap of the word with one of that speaker's
    turns after fusing the speaker's overlapping turns (a quadratic reference)."""
    best: dict[str, float] = {}
    for spk in {x.speaker for x in turns}:
        spans = sorted(tuple(sorted((x.start, x.end))) for x in turns if x.speaker == spk)
        fused: list[list[float]] = []
        for lo, hi in spans:
            if fused and lo <= fused[-1][1]:
                fused[-1][1] = max(fused[-1][1], hi)
            else:
                fused.append([lo, hi])
        for lo, hi in fused:
            ov = min(hi, word.end) - max(lo, word.start)
            if ov > 0:
                best[spk] = max(best.get(spk, 0.0), ov)
    return best


@settings(max_examples=200, deadline=None)
@given(data=words_and_turns())
def test_each_word_gets_a_speaker_it_overlaps_most(
    data: tuple[list[Word], list[SpeakerTurn]],
) -> None:
    words, turns = data
    segs = assign_speakers(words, turns, language="en")
    for s in segs:
        for x in s.words:
            overlaps = _naive_best_overlap(x, turns)
            if overlaps:
                assert overlaps.get(s.speaker, 0.0) == pytest.approx(max(overlaps.values()))


# --- scale ---------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_scales_to_200k_words_and_20k_turns() -> None:
    # An O(n^2) merge would run for hours here; pytest-timeout turns that into a failure.
    rng = random.Random(7)
    words = []
    clock = 0.0
    for i in range(200_000):
        clock += rng.uniform(0.05, 0.4)
        words.append(
            w(clock, clock + rng.uniform(0.05, 0.3), f"w{i}" + ("." if i % 17 == 0 else ""))
        )
    turns = []
    tclock = 0.0
    for i in range(20_000):
        length = rng.uniform(0.5, 6.0)
        turns.append(t(tclock, tclock + length, f"SPEAKER_0{i % 3}"))
        tclock += length * rng.uniform(0.8, 1.1)
    rng.shuffle(words)
    segs = assign_speakers(words, turns, language="en")
    assert sum(len(s.words) for s in segs) == 200_000

"""Where a split falls among a segment's timed words."""

from pipelines.align import word_cut


def test_a_cut_between_recogniser_tokens_gives_the_head_s_token_count() -> None:
    words = ["我们", "很早", "就", "决定", "做", "MoE", "架构。"]
    text = "我们很早就决定做 MoE 架构。"
    assert word_cut(words, text, "我们很早就") == 3
    assert word_cut(words, text, "我们很早就决定做") == 5


def test_a_cut_inside_a_token_has_no_time_of_its_own() -> None:
    words = ["我们", "很早"]
    assert word_cut(words, "我们很早", "我") is None


def test_english_words_and_spaces() -> None:
    words = ["We", "decided", "early,", "very", "early."]
    text = "We decided early, very early."
    assert word_cut(words, text, "We decided early,") == 3
    assert word_cut(words, text, "We dec") is None


def test_words_that_do_not_spell_the_text_are_not_cut() -> None:
    assert word_cut(["old", "words"], "new words", "new") is None
    # nothing on one side is not a cut
    assert word_cut(["a", "b"], "a b", "") is None
    assert word_cut(["a", "b"], "a b", "a b") is None

"""Tests for pipelines.text: script folding, search tokens, hallucination and loop checks."""

from __future__ import annotations

import pytest

from pipelines.text import (
    asr_token,
    cjk_spaced,
    compression_ratio,
    has_repetition_loop,
    is_cjk,
    is_hallucination,
    join_tokens,
    normalise_for_match,
    to_simplified,
)


def test_to_simplified_folds_traditional_names() -> None:
    assert to_simplified("閆俊傑") == "闫俊杰"
    assert to_simplified("MiniMax的發展") == "MiniMax的发展"
    assert to_simplified("") == ""
    assert to_simplified("plain English") == "plain English"


@pytest.mark.parametrize(
    ("ch", "expected"),
    [
        ("中", True),
        ("傑", True),
        ("㐀", True),
        ("𠀀", True),
        ("カ", True),
        ("a", False),
        ("1", False),
        ("。", False),
        ("，", False),
        ("", False),
    ],
)
def test_is_cjk(ch: str, expected: bool) -> None:
    assert is_cjk(ch) is expected


def test_cjk_spaced_mixed() -> None:
    assert cjk_spaced("MoE架构很重要") == "moe 架 构 很 重 要"
    assert cjk_spaced("MoE架構很重要！") == "moe 架 构 很 重 要"


def test_cjk_spaced_punctuation_and_fullwidth() -> None:
    assert cjk_spaced("“你好，世界。” Hello, World!") == "你 好 世 界 hello world"
    assert cjk_spaced("ＧＰＴ－４和Claude") == "gpt 4 和 claude"
    assert cjk_spaced("   ") == ""


def test_cjk_spaced_query_and_index_agree() -> None:
    # A traditional-script query must find simplified text as a phrase.
    assert cjk_spaced("閆俊傑") in cjk_spaced("我们采访了闫俊杰。")


def test_normalise_for_match() -> None:
    assert normalise_for_match("  閆俊傑說：「Hello, World!」") == "闫俊杰说helloworld"
    assert normalise_for_match("…") == ""


def test_join_tokens_chinese_english_and_punctuation() -> None:
    assert join_tokens([" Hello,", " world."]) == "Hello, world."
    assert join_tokens(["我们", "用", " MoE", "架构", "。"]) == "我们用MoE架构。"
    assert join_tokens(["好的。", " OK", " so"]) == "好的。OK so"
    assert join_tokens([" (", "yes", ")"]) == "(yes)"
    assert join_tokens(["", "  ", "a"]) == "a"


def test_join_tokens_keeps_latin_pieces_of_chinese_mode_together() -> None:
    # Measured: faster-whisper base in Chinese mode splits MiniMax into M/ini/Max.
    assert join_tokens(["账", "是", "M", "ini", "Max", "的", "访", "谈。"]) == "账是MiniMax的访谈。"
    assert join_tokens(["是", " GPT", "-", "4", " and", " Claude"]) == "是GPT-4 and Claude"


def test_asr_token() -> None:
    assert asr_token("  Hello ") == " Hello"
    assert asr_token("你好") == "你好"
    assert asr_token("   ") == ""


@pytest.mark.parametrize(
    "line",
    [
        "字幕由Amara.org社群提供",
        "字幕由 Amara.org 社群提供",
        "字幕由Amara.org社區提供",
        "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
        "請不吝點贊 訂閱 轉發 打賞支持明鏡與點點欄目",
        "Thanks for watching!",
        " Thank you for watching.",
        "Subtitles by the Amara.org community",
        "优优独播剧场——YoYo Television Series Exclusive",
        "中文字幕——Yo Yo 字幕组",
        "谢谢观看！",
    ],
)
def test_is_hallucination_known_lines(line: str) -> None:
    assert is_hallucination(line)


@pytest.mark.parametrize(
    "line",
    [
        "谢谢。",
        "Thank you.",
        "我们做了一个字幕组的产品，后来做了很多年。",
        "Thanks for watching the market so closely, he told me.",
        "我们的模型叫 MiniMax。",
        "",
    ],
)
def test_is_hallucination_keeps_real_speech(line: str) -> None:
    assert not is_hallucination(line)


def test_has_repetition_loop() -> None:
    assert has_repetition_loop("I don't hear that in New Jersey now. " * 6)
    assert has_repetition_loop("我们的模型" * 8)
    assert has_repetition_loop("好" * 20)
    assert not has_repetition_loop("对对对对，是这样。")
    assert not has_repetition_loop("哈哈哈哈哈哈")
    assert not has_repetition_loop(
        "Well, there isn't that much difference. At least, you know, they all call me "
        "a Yankee down here, so what can I say? Oh, I don't hear that in New Jersey now."
    )
    assert not has_repetition_loop("")


def test_compression_ratio() -> None:
    assert compression_ratio("") == 0.0
    assert compression_ratio("abc " * 100) > 2.4

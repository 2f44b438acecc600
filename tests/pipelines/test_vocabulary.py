"""Tests for pipelines.vocabulary.build_prompt."""

from __future__ import annotations

from pipelines.vocabulary import build_prompt, prompt_weight


def test_chinese_prompt_from_people_and_organisations() -> None:
    assert build_prompt(["闫俊杰"], ["MiniMax"]) == "以下是与闫俊杰、MiniMax的访谈。"
    assert build_prompt(["闫俊杰"], ["MiniMax"], language="zh") == "以下是与闫俊杰、MiniMax的访谈。"


def test_english_prompt() -> None:
    assert (
        build_prompt(["Yan Junjie", "Sheila"], ["MiniMax"], language="en")
        == "An interview with Yan Junjie, Sheila, MiniMax."
    )


def test_dedupes_across_script_case_and_spacing_keeping_order() -> None:
    prompt = build_prompt(["閆俊傑", "贠烨祎", "闫俊杰", "  minimax "], ["MiniMax", "稀宇科技"])
    assert prompt == "以下是与闫俊杰、贠烨祎、minimax、稀宇科技的访谈。"


def test_traditional_names_are_simplified_for_chinese_only() -> None:
    assert build_prompt(["閆俊傑"]) == "以下是与闫俊杰的访谈。"
    assert build_prompt(["閆俊傑"], language="en") == "An interview with 閆俊傑."


def test_nothing_to_say_gives_none() -> None:
    assert build_prompt([]) is None
    assert build_prompt(["", "  ", "。"]) is None
    assert build_prompt(["x" * 500]) is None  # a single term over the cap


def test_length_is_capped_keeping_people_first() -> None:
    names = [f"人名{i:03d}" for i in range(100)]
    prompt = build_prompt(names, ["MiniMax"], max_chars=120)
    assert prompt is not None
    assert prompt_weight(prompt) <= 120
    assert prompt.startswith("以下是与人名000、人名001") and prompt.endswith("的访谈。")
    assert "MiniMax" not in prompt
    # Whisper keeps at most 223 prompt tokens; the default cap stays well inside.
    assert prompt_weight(build_prompt(names) or "") <= 200


def test_prompt_weight_counts_cjk_double() -> None:
    assert prompt_weight("ab") == 2
    assert prompt_weight("闫俊杰") == 6

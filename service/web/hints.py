"""What to try when a search finds nothing: fewer words, another spelling, no filters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

#: Words of a query: quoted phrases whole, else runs between spaces.
_TERMS = re.compile(r'"[^"]+"|\S+')


@dataclass(frozen=True)
class Hint:
    text: str
    #: Search links that try it (label, href); empty when the hint is advice only.
    links: list[tuple[str, str]]


def _search(q: str, **filters: int | str | None) -> str:
    params = {"q": q} | {k: v for k, v in filters.items() if v not in (None, "")}
    return "/search?" + urlencode(params)


def no_results(q: str, *, person_id: int | None, recording_id: int | None,
               language: str | None) -> list[Hint]:
    """Suggestions for a query that found nothing, each with links that try it."""
    filters = {"person": person_id, "recording": recording_id, "language": language}
    hints: list[Hint] = []
    if any(v not in (None, "") for v in filters.values()):
        hints.append(Hint("Remove the filters: the words may be there, said by someone "
                          "else, in another recording or language.",
                          [("Search everything", _search(q))]))
    terms = _TERMS.findall(q.strip())
    if len(terms) > 1:
        hints.append(Hint("Use fewer words: every word must occur in the same segment.",
                          [(t, _search(t, **filters)) for t in terms[:5]]))
    if any(t.startswith('"') for t in terms):
        unquoted = q.replace('"', " ").strip()
        hints.append(Hint("Drop the quotation marks: a phrase must match word for word.",
                          [(unquoted, _search(unquoted, **filters))]))
    hints.append(Hint("Try another spelling: a name in characters or in pinyin (闫俊杰 or "
                      "Yan Junjie), simplified or traditional, a company's Chinese or "
                      "English name. Spellings recorded in the glossary are searched "
                      "together.", [("Glossary", "/glossary")]))
    return hints

"""What a user typed, as phrases of plain tokens, and how a phrase's hits are scored.

The query never reaches either engine as syntax: :func:`parse_query` reduces it to a
list of phrases of plain alphanumeric tokens (each ANDed with the others), and each
engine's query text is generated from that list, so quotes, ``*``, ``NEAR``, ``OR``,
``-``, parentheses and colons are only ever words or separators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from pipelines.text import cjk_spaced, is_cjk
from service.errors import Invalid
from service.models.transcripts import Segment

MAX_QUERY_CHARS = 500


MAX_PHRASES = 16


#: ``a*`` would make either engine merge the posting lists of every word starting with a.
MIN_PREFIX_CHARS = 2


class QueryError(Invalid):
    """The search query cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Phrase:
    """Tokens that must occur next to each other; with ``prefix``, the last one may go on."""

    tokens: tuple[str, ...]
    prefix: bool = False

    def fts5(self) -> str:
        # Tokens are alphanumeric by construction; doubling quotes is belt and braces.
        body = " ".join(self.tokens).replace('"', '""')
        return f'"{body}"' + (" *" if self.prefix else "")

    def tsquery(self) -> str:
        parts = [f"'{t}'" for t in (tok.replace("'", "''") for tok in self.tokens)]
        if self.prefix:
            parts[-1] += ":*"
        return "(" + " <-> ".join(parts) + ")"


@dataclass(frozen=True)
class Term:
    """One thing a segment must hold: what the user typed, or one of its other names, or
    (for a person's name) speech of that person.

    ``typed`` are the user's phrases (all must occur, as without expansion); ``aliases``
    the other names of what they name (``service.search.aliases``), any one of which
    will do; ``speakers`` the people whose speech matches the term too.
    """

    typed: tuple[Phrase, ...]
    aliases: tuple[Phrase, ...] = ()
    speakers: tuple[int, ...] = ()

    @property
    def expanded(self) -> bool:
        return bool(self.aliases or self.speakers)

    def fts5_text(self) -> str:
        """FTS5 MATCH text over the text column alone (no column filter)."""
        typed = " AND ".join(p.fts5() for p in self.typed)
        if not self.aliases:
            return typed
        return " OR ".join([f"({typed})", *(p.fts5() for p in self.aliases)])


@dataclass(frozen=True)
class ParsedQuery:
    """A user query as phrases that must all occur in a segment.

    ``terms`` group the phrases as search runs them: by default one term per phrase;
    after alias expansion a term may stand for several typed phrases ("Yan Junjie") and
    carry their other names.
    """

    phrases: tuple[Phrase, ...]
    terms: tuple[Term, ...] = ()

    def __post_init__(self) -> None:
        if not self.terms:
            object.__setattr__(self, "terms", tuple(Term((p,)) for p in self.phrases))

    @property
    def marked(self) -> tuple[Phrase, ...]:
        """Every phrase a snippet marks: the typed ones and their aliases."""
        out = list(self.phrases)
        for term in self.terms:
            out += [p for p in term.aliases if p not in out]
        return tuple(out)

    def fts5(self) -> str:
        """FTS5 MATCH text: phrases side by side, which FTS5 reads as AND."""
        return " ".join(p.fts5() for p in self.phrases)

    def tsquery(self) -> str:
        """``to_tsquery`` text: phrases (``<->``) joined with ``&``."""
        return " & ".join(p.tsquery() for p in self.phrases)


# A quoted phrase ("…", “…” or 「…」, optionally followed by * for a prefix) or a run of
# anything else up to whitespace. An unmatched quote falls through to the second
# branch and is dropped as punctuation by cjk_spaced.
_TERM = re.compile(
    r'"(?P<q1>[^"]*)"(?P<s1>\*)?|“(?P<q2>[^”]*)”(?P<s2>\*)?|「(?P<q3>[^」]*)」(?P<s3>\*)?'
    r"|(?P<bare>\S+)"
)


def parse_query(q: str) -> ParsedQuery:
    """Turn what a user typed into phrases, or raise :class:`QueryError`.

    Whitespace separates terms and every term is a phrase (``MoE 架构`` is
    ``"moe" AND "架 构"``); a quoted part is one phrase; a trailing ``*`` on an English
    word asks for a prefix. Everything is folded the way the index is (simplified
    script, lower case, punctuation dropped), and words such as AND, OR, NOT or NEAR
    are searched for as words.
    """
    text = q.strip()
    if not text:
        raise QueryError("The search query is empty. Give a word or phrase in q, e.g. q=闫俊杰.")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"The search query is {len(text)} characters long; the limit is "
            f"{MAX_QUERY_CHARS}. Search for a shorter phrase."
        )
    phrases: list[Phrase] = []
    for m in _TERM.finditer(text):
        quoted = next((m[g] for g in ("q1", "q2", "q3") if m[g] is not None), None)
        raw = quoted if quoted is not None else m["bare"]
        starred = any(m[g] for g in ("s1", "s2", "s3")) or raw.rstrip().endswith("*")
        tokens = tuple(cjk_spaced(raw).split())
        if not tokens:
            continue
        prefix = starred and not is_cjk(tokens[-1])
        if prefix and len(tokens[-1]) < MIN_PREFIX_CHARS:
            raise QueryError(
                f"The prefix {tokens[-1]!r}* is too short: give at least {MIN_PREFIX_CHARS} "
                "letters before '*'."
            )
        phrase = Phrase(tokens, prefix)
        if phrase not in phrases:
            phrases.append(phrase)
    if not phrases:
        raise QueryError(
            "The search query has no letters, digits or Chinese characters to search for "
            "(punctuation and operators alone match nothing). Give a word or phrase."
        )
    if len(phrases) > MAX_PHRASES:
        raise QueryError(
            f"The search query has {len(phrases)} separate terms; the limit is {MAX_PHRASES}. "
            'Put words that belong together in quotes, e.g. "deep research".'
        )
    return ParsedQuery(tuple(phrases))


def relevance(parsed: ParsedQuery, length: Any, long_segment: float) -> Any:
    """Relevance from ``search_text``: each phrase's occurrences, damped by length.

    bm25's shape (tf / (tf + k * length)) without its IDF: FTS5's bm25() computes the
    IDF by running every phrase over the whole index first (24 ms for 模型 at 1 M
    segments, even with a filter leaving 200 hits), and PostgreSQL's ts_rank re-parses
    every hit. Occurrences are counted by what replace() removes; the needle has no
    trailing space, so back-to-back repeats ("闫 俊 杰 闫 俊 杰") all count, and that it
    also counts "agents" for "agent" only nudges the order of true matches.
    ``long_segment`` is the length (in ``length``'s unit) that halves a single hit's
    weight: about 100 Chinese characters.

    An expanded term scores in tiers, so that exact matches come first: a segment with
    what the user typed scores 1 + (typed score / phrases) in [1, 2); one with only other
    names the damped sum of their occurrences, in [0, 1); speech of the person alone, 0.
    A term that was not expanded scores as it always has.
    """
    score: Any = sa.literal(0.0)
    damping = 0.5 + length(col(Segment.search_text)) / long_segment
    spaced = sa.literal(" ") + col(Segment.search_text)
    needles = iter(range(10_000))

    def tf(phrase: Phrase) -> Any:
        needle: Any = sa.bindparam(f"needle_{next(needles)}", " " + " ".join(phrase.tokens))
        removed = length(sa.func.replace(spaced, needle, ""))
        return sa.cast((length(spaced) - removed) / length(needle), sa.Float)

    for term in parsed.terms:
        typed: Any = sa.literal(0.0)
        for phrase in term.typed:
            n = tf(phrase)
            typed = typed + n / (n + damping)
        if not term.expanded:
            score = score + typed
            continue
        other: Any = sa.literal(0.0)
        for phrase in term.aliases:
            other = other + tf(phrase)
        score = score + sa.case(
            (typed > 0, 1.0 + typed / len(term.typed)),
            else_=other / (other + damping))
    return score

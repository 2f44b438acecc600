"""Alias expansion: a query that names a person or an organisation finds every name of it.

The names come live from two places at query time, so an edit to either takes effect
on the next search and nothing is reindexed:

- people: ``Person.name`` and ``alt_names``; a person's own speech matches too;
- the glossary (``GlossaryTerm``): a term and its aliases (nicknames such as 闫总,
  organisations and their products: MiniMax, 稀宇科技, 海螺AI).

Chinese names of people get their pinyin without tones (pypinyin) in both orders
("yan junjie", "junjie yan"). A name is looked up by its *key*: its index tokens with
the spaces taken out, so "Yan Junjie", "yanjunjie", "YAN JUNJIE" and 閆俊傑 (folded to
simplified) all find 闫俊杰. Entries that share a key with a matched entry join it
(one step): the glossary term 闫俊杰 with alias 闫总 links 闫总 to the person 闫俊杰.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa
from sqlmodel import Session, col

from pipelines.text import cjk_spaced, is_cjk
from service.models.glossary import ExpandedTerm, GlossaryTerm, TermKind
from service.models.people import Person
from service.search.query import ParsedQuery, Phrase, Term

#: Other names one term of a query may expand to; each is one more phrase per candidate
#: row to score, so a person with fifty spellings cannot make a search slow.
MAX_ALIASES_PER_TERM = 24


#: Typed phrases tried together as one name ("Yan Junjie" is two phrases).
MAX_NAME_PHRASES = 4


@dataclass(frozen=True)
class Entry:
    """One thing's names: a person (``person_id`` set) or a glossary term."""

    source: str
    id: int
    kind: str
    names: tuple[str, ...]

    @property
    def person_id(self) -> int | None:
        return self.id if self.source == "person" else None

    @property
    def is_person(self) -> bool:
        return self.source == "person" or self.kind == TermKind.person.value


def key(text: str) -> str:
    """What a name is looked up by: its index tokens, folded, without spaces."""
    return "".join(cjk_spaced(text).split())


@lru_cache(maxsize=8192)
def pinyin_forms(name: str) -> tuple[str, ...]:
    """"闫俊杰" -> ("yan junjie", "junjie yan"): the ways a Chinese name is romanised.

    The surname is the first character (the first two of a four-character name, which
    are mostly compound surnames such as 欧阳 or 司马); the given name is written as one
    word, as in passports and bylines. Only names written wholly in Han characters.
    """
    text = "".join(cjk_spaced(name).split())
    if not 2 <= len(text) <= 4 or not all(is_cjk(ch) for ch in text):
        return ()
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(text, style=Style.NORMAL)
    if len(syllables) != len(text) or not all(s.isascii() and s.isalpha() for s in syllables):
        return ()
    cut = 2 if len(text) == 4 else 1
    surname, given = "".join(syllables[:cut]), "".join(syllables[cut:])
    return (f"{surname} {given}", f"{given} {surname}")


def spellings(entry: Entry) -> list[str]:
    """Every name of ``entry`` as written, then the pinyin of its (Chinese) main name."""
    out = list(dict.fromkeys(n for n in entry.names if key(n)))
    if entry.is_person:
        # The name itself only: pinyin of a nickname (闫总 -> "yan zong") is no one's name.
        out += [p for p in pinyin_forms(entry.names[0]) if p not in out]
    return out


def load_entries(session: Session) -> list[Entry]:
    """People and glossary terms as they are now (two small reads, no ORM objects)."""
    conn = session.connection()
    entries = [
        Entry("person", pid, "person", (name, *(alt or [])))
        for pid, name, alt in conn.execute(
            sa.select(col(Person.id), col(Person.name), col(Person.alt_names))).all()
        if pid is not None
    ]
    entries += [
        Entry("glossary", tid, str(getattr(kind, "value", kind)),
              (term, *(aliases or [])))
        for tid, term, aliases, kind in conn.execute(sa.select(
            col(GlossaryTerm.id), col(GlossaryTerm.term), col(GlossaryTerm.aliases),
            col(GlossaryTerm.kind))).all()
        if tid is not None
    ]
    return entries


class NameIndex:
    """Keys of every spelling -> the entries that have it."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)
        self.by_key: dict[str, list[int]] = {}
        self.keys: list[set[str]] = []
        for i, entry in enumerate(self.entries):
            keys = {k for k in (key(s) for s in spellings(entry)) if k}
            # "yanjunjie" must find the pinyin "yan junjie" too: keys have no spaces.
            self.keys.append(keys)
            for k in keys:
                self.by_key.setdefault(k, []).append(i)

    def group(self, name_key: str) -> list[Entry]:
        """Entries with this key, and those sharing any key with them (one step)."""
        direct = self.by_key.get(name_key, [])
        found = dict.fromkeys(direct)
        for i in direct:
            for k in self.keys[i]:
                found.update(dict.fromkeys(self.by_key.get(k, [])))
        return [self.entries[i] for i in found]


def _phrase(text: str) -> Phrase | None:
    tokens = tuple(cjk_spaced(text).split())
    return Phrase(tokens) if tokens else None


def _expanded(typed: tuple[Phrase, ...], group: Iterable[Entry]) -> Term:
    aliases: list[Phrase] = []
    speakers: list[int] = []
    for entry in group:
        if entry.person_id is not None and entry.person_id not in speakers:
            speakers.append(entry.person_id)
        for spelling in spellings(entry):
            phrase = _phrase(spelling)
            if phrase is None or phrase in aliases or phrase in typed:
                continue
            aliases.append(phrase)
    return Term(typed, tuple(aliases[:MAX_ALIASES_PER_TERM]), tuple(speakers))


def expand(parsed: ParsedQuery, index: NameIndex) -> ParsedQuery:
    """``parsed`` with every run of phrases that is a known name expanded to its names.

    Runs are matched longest first, so "Yan Junjie" is one name rather than two words;
    a prefix phrase (``transform*``) is never a name. A query naming nothing known comes
    back unchanged, and so searches exactly as without expansion.
    """
    phrases = parsed.phrases
    terms: list[Term] = []
    i = 0
    while i < len(phrases):
        for j in range(min(len(phrases), i + MAX_NAME_PHRASES), i, -1):
            run = phrases[i:j]
            if any(p.prefix for p in run):
                continue
            group = index.group("".join("".join(p.tokens) for p in run))
            if group:
                terms.append(_expanded(run, group))
                i = j
                break
        else:
            terms.append(Term((phrases[i],)))
            i += 1
    if not any(t.expanded for t in terms):
        return parsed
    return ParsedQuery(phrases, tuple(terms))


def expand_query(session: Session, parsed: ParsedQuery) -> ParsedQuery:
    """:func:`expand` against the names in the database now."""
    return expand(parsed, NameIndex(load_entries(session)))


def describe(session: Session, terms: Sequence[Term]) -> list[ExpandedTerm]:
    """The expanded terms as a response shows them, people by name."""
    ids = {p for t in terms for p in t.speakers}
    names = dict(session.connection().execute(
        sa.select(col(Person.id), col(Person.name)).where(col(Person.id).in_(ids))).all()
    ) if ids else {}
    return [ExpandedTerm(
        typed=" ".join(" ".join(p.tokens) for p in t.typed),
        alternatives=[" ".join(p.tokens) for p in t.aliases],
        people=[names[p] for p in t.speakers if p in names],
        person_ids=[p for p in t.speakers if p in names],
    ) for t in terms]

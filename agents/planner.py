"""The model-free planner: a plan read off the question's spaCy parse.

The question's names (capitalised word runs, kept whole: "Journal of Psychotherapy
Integration", "Wrong Turn 5: Bloodlines", "Dark River (2017 Film)") become ``link``
steps. What surrounds a name is read as a chain of relations leading away from it:

* possessives — "Lothair II's mother", "X's husband's father"
* "of" phrases — "the place of birth of the director of film X" (innermost first)
* relative clauses — "the association which published X" (``? —published→ X``)
* the question's own verb — "When did ... die?", "Where was ... born?" (a ``read``)

Two names joined by "or"/"and" with a comparison word ("first", "later", "same",
"older") make a comparison: each name's branch is planned as above (with a shared bridge
relation: "Which film has the director who was born first, A or B?") and the branches
meet in a ``compare`` step. A question none of this fits is planned as the single shot
(link, lookup, answer), and the plan says so.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from agents.parsing import cached_parser
from agents.plan import CompareOp, Plan, Planner, Step
from agents.question import HEAD_TYPES, answer_types, stem
from extractors import SpacyEntityExtractor
from graph import ThreadlineError

__all__ = ["FallbackPlanner", "RulePlanner", "plan_from_parse"]

#: Words that may sit inside a name between capitalised words ("Journal of X").
_CONNECTORS = frozenset(
    "of the a an de la le les du des von van der den da di del y for in on at to with "
    "from & - : 's '".split()
)
_WH = frozenset("what which who whom whose when where why how".split())
#: Class words written before a title ("film X", "the song X"): types, not relations.
_CLASS_WORDS = frozenset(
    "film films movie movies song songs album albums book books novel novels series show "
    "shows game games play plays poem poems opera operas work works magazine magazines "
    "newspaper newspapers band bands company companies person people man woman place "
    "city town country village river mountain station school university team club group "
    "character episode documentary single track".split()
)
#: Compound relation nouns read as one relation ("place of birth").
_COMPOUNDS = frozenset(
    {
        "place of birth",
        "date of birth",
        "place of death",
        "date of death",
        "cause of death",
        "place of burial",
        "country of origin",
        "country of citizenship",
        "place of education",
    }
)
_COMPARATIVES: dict[str, CompareOp] = {
    "first": "earliest",
    "earlier": "earliest",
    "earliest": "earliest",
    "older": "earliest",
    "oldest": "earliest",
    "sooner": "earliest",
    "later": "latest",
    "last": "latest",
    "latest": "latest",
    "younger": "latest",
    "youngest": "latest",
    "recently": "latest",
    "more": "largest",
    "longer": "largest",
    "larger": "largest",
    "bigger": "largest",
    "taller": "largest",
    "higher": "largest",
    "most": "largest",
    "fewer": "smallest",
    "less": "smallest",
    "shorter": "smallest",
    "smaller": "smallest",
    "same": "same",
    "both": "same",
    "different": "different",
}
#: Attribute words and the types of their values ("born first" compares dates).
_DATE_VERBS = frozenset(
    "bear born die died release released found founded establish established publish "
    "published form formed create created open opened start started premiere premiered "
    "build built launch launched marry married come out".split()
)
_ATTRIBUTE_TYPES: dict[str, tuple[str, ...]] = {
    "nationality": ("NORP", "GPE"),
    "country": ("GPE", "NORP"),
    "citizenship": ("GPE", "NORP"),
    "place of birth": ("GPE", "LOC", "FAC"),
    "place of death": ("GPE", "LOC", "FAC"),
    "place of burial": ("GPE", "LOC", "FAC"),
    "date of birth": ("DATE",),
    "date of death": ("DATE",),
    "cause of death": (),
}
_SKIP = frozenset({"the", "a", "an", "both", "same", "different", "?", ",", ".", "!"})


@dataclass(frozen=True, slots=True)
class _Tok:
    """A token of the masked question: a word, or a name (``mention`` set)."""

    text: str
    lower: str
    pos: str
    lemma: str
    mention: str | None = None


class RulePlanner:
    """Plans questions from their parse; thread-safe, CPU-bound parsing off the loop."""

    name = "rules"

    def __init__(self, extractor: SpacyEntityExtractor) -> None:
        self._extractor = extractor

    async def plan(self, question: str) -> Plan:
        """The plan for ``question``."""
        doc = await asyncio.to_thread(cached_parser(self._extractor), question.strip())
        return plan_from_parse(doc)


class FallbackPlanner:
    """A planner (a model asked for the plan's JSON) backed by another (the rule planner):
    when the first fails, times out or returns a plan that is not decomposed, the second
    plans, and its plan's note says why."""

    def __init__(self, primary: Planner, fallback: Planner, *, timeout_s: float = 10.0) -> None:
        self.primary = primary
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.name = f"{primary.name}+{fallback.name}"

    async def plan(self, question: str) -> Plan:
        """The primary's plan, or the fallback's with the reason in its note."""
        try:
            plan = await asyncio.wait_for(self.primary.plan(question), self.timeout_s)
        except (ThreadlineError, ValueError, TimeoutError) as exc:
            why = f"{self.primary.name} planner failed ({type(exc).__name__}: {exc})"
        else:
            if plan.decomposed:
                return plan
            why = f"{self.primary.name} planner did not decompose the question"
        plan = await self.fallback.plan(question)
        note = f"{why}; planned by {self.fallback.name}" + (f"; {plan.note}" if plan.note else "")
        return plan.model_copy(update={"note": note})


def plan_from_parse(doc: Any) -> Plan:
    """The plan of a parsed question (pure: no stores, no models)."""
    question = doc.text.strip()
    toks = _masked(doc)
    names = [t.mention for t in toks if t.mention is not None]
    expects = tuple(sorted(answer_types(doc)))
    if toks and toks[0].lower in {"why", "how"}:
        expects = ()  # a reason or a manner, not an entity
    if len(toks) > 3 and toks[1].lower in {"did", "does", "do"} and toks[-1].text == "?":
        # "Where did X's father study?": the word before "?" is the question's verb.
        last = toks[-2]
        if last.mention is None and last.pos == "NOUN":
            toks[-2] = _Tok(last.text, last.lower, "VERB", last.lemma)
    if not names:
        return _Builder(question).single_shot("no names in the question to start a chain from")
    pair = _comparison(toks)
    plan = (
        _Builder(question).comparison(toks, pair, expects)
        if pair is not None
        else _best_chain(question, toks, names, expects)
    )
    uncovered = _uncovered(toks, plan)
    if not uncovered:
        return plan
    note = f"partial: no step accounts for {', '.join(repr(w) for w in uncovered)}"
    return plan.model_copy(update={"uncovered": uncovered, "note": note})


def _best_chain(
    question: str, toks: list[_Tok], names: list[str], expects: tuple[str, ...]
) -> Plan:
    """The chain starts at the innermost name: try each, keep the plan that accounts for
    most of the question ("the country where Clonbrook is located" starts at Clonbrook,
    not at CARICOM)."""
    best: tuple[tuple[int, int, int], Plan] | None = None
    for anchor in (i for i, t in enumerate(toks) if t.mention is not None):
        chain = _chain(toks, anchor)
        if not chain:
            continue
        candidate = _Builder(question).chained(names, toks[anchor].mention or "", chain, expects)
        key = (-len(_uncovered(toks, candidate)), candidate.hops, anchor)
        if best is None or key > best[0]:
            best = (key, candidate)
    if best is None:
        distinct = list(dict.fromkeys(names))
        if len(distinct) >= 2:
            return _Builder(question).joined(distinct[:2])
        return _Builder(question).single_shot("no relation around the question's names", names)
    return best[1]


def _uncovered(toks: list[_Tok], plan: Plan) -> tuple[str, ...]:
    """Content words of the question that no step's relation or name accounts for."""
    used: set[str] = set()
    for step in plan.steps:
        used.update((step.relation or "").split())
        used.update((step.target or "").split())
    used_stems = {stem(u) for u in used}
    head = _wh_head(toks)
    left = []
    for n, tok in enumerate(toks):
        if tok.mention is not None or tok.pos not in {"NOUN", "VERB", "ADJ", "PROPN", "NUM"}:
            continue
        if _kind_before_name(toks, n):
            continue
        if (
            tok.lemma in {"be", "have", "do", "call", "locate", "situate", "base"}
            or tok.lemma in _GENERIC
        ):
            continue
        if tok.lower in _WH:
            continue
        if tok.lower in _COMPARATIVES or tok.lemma in _CLASS_WORDS or tok.lemma == head:
            continue
        if tok.lower in used or tok.lemma in used or stem(tok.lower) in used_stems:
            continue
        left.append(tok.lower)
    return tuple(dict.fromkeys(left))


# ---------------------------------------------------------------------- masking


def _masked(doc: Any) -> list[_Tok]:
    """The question's tokens with each name collapsed into one token."""
    words = [t for t in doc if not t.is_space]
    out: list[_Tok] = []
    i = 0
    while i < len(words):
        end = _name_end(words, i)
        if end > i:
            span = doc[words[i].i : words[end - 1].i + 1]
            out.append(_Tok(span.text, span.text.lower(), "PROPN", span.text, span.text))
            i = end
            continue
        t = words[i]
        pos = "NOUN" if _role_acronym(words, i) else t.pos_
        out.append(_Tok(t.text, t.lower_, pos, t.lemma_.lower()))
        i += 1
    return out


_DETERMINERS = frozenset("the a an its their his her our".split())


def _role_acronym(words: list[Any], i: int) -> bool:
    """Whether a short all-capitals word is a role, not a name: "the CEO of X", "X's
    CFO" (a determiner or possessive before it, "of"/"at" after it or nothing more)."""
    text = words[i].text
    if not (text.isalpha() and text.isupper() and 2 <= len(text) <= 5):
        return False
    before = words[i - 1].lower_ if i > 0 else ""
    after = words[i + 1].lower_ if i + 1 < len(words) else ""
    return (before in _DETERMINERS and after in {"of", "at", "for"}) or before in {"'s", "'"}


def _is_namey(token: Any, first: bool) -> bool:
    text = token.text
    if not text[:1].isalnum() or text.lower() in {"'s"}:
        return False
    if first and (token.lower_ in _WH or token.pos_ not in {"PROPN", "NOUN", "NUM"}):
        return False
    return bool(text[:1].isupper() or text[:1].isdigit())


def _name_end(words: list[Any], i: int) -> int:
    """End (exclusive) of the name starting at ``words[i]``, or ``i`` if none starts."""
    if not _is_namey(words[i], i == 0) or _role_acronym(words, i):
        return i
    end = j = i + 1
    while j < len(words):
        step = _name_continues(words, j)
        if step == 0:
            break
        j += step
        if _is_namey(words[j - 1], False) or words[j - 1].text == ")":
            end = j
    if end < len(words) and words[end].lower_ in {"or", "and"}:
        # "A, B or C": a comma before a list's last names does not join them.
        commas = [k for k in range(i, end) if words[k].text == ","]
        if commas:
            end = commas[0]
    # A bare number ("in 1990") is not a name.
    if all(w.text.isdigit() for w in words[i:end]):
        return i
    return end


def _name_continues(words: list[Any], j: int) -> int:
    """How many words from ``words[j]`` on still belong to a name (0: it ends here)."""
    w = words[j]
    if _is_namey(w, False):
        return 1
    if w.text == "(":
        # "Dark River (2017 Film)": a short parenthesis right after a name is part of it
        close = next(
            (k for k in range(j + 2, min(j + 6, len(words))) if words[k].text == ")"), None
        )
        return close + 1 - j if close is not None else 0
    # A connector counts only when a capitalised word follows it ("God's Gift",
    # "Maurice, Prince of Orange"; not "Lothair II's mother").
    joins = w.lower_ in _CONNECTORS or w.text == ","
    if joins and j + 1 < len(words) and _role_acronym(words, j + 1):
        return 0  # "Hooli's CFO": the role is not part of the name
    return 1 if joins and j + 1 < len(words) and _is_namey(words[j + 1], False) else 0


# ---------------------------------------------------------------------- comparisons


def _comparison(toks: list[_Tok]) -> tuple[int, int, CompareOp] | None:
    """(index of name A, index of name B, operator) when the question compares two names."""
    op = next((_COMPARATIVES[t.lower] for t in toks if t.lower in _COMPARATIVES), None)
    for i, tok in enumerate(toks):
        if tok.mention is None:
            continue
        for j in range(i + 2, min(i + 5, len(toks))):
            between = [t.lower for t in toks[i + 1 : j]]
            between = [w for w in between if w not in {"the", "a", "an"}]
            if toks[j].mention is not None and between in (["or"], ["and"], [",", "or"]):
                if op is None and between[-1] == "and":
                    continue  # "A and B" without a comparison word is an intersection
                return i, j, op or "same"
    return None


def _attribute(toks: list[_Tok], bridge: str | None) -> str | None:
    """The compared attribute: "born" in "born first", "nationality" in "same nationality"."""
    for i, tok in enumerate(toks):
        if tok.lower not in _COMPARATIVES:
            continue
        if tok.lower in {"older", "oldest", "younger", "youngest"}:
            return "born"
        if tok.lower in {"same", "different"}:
            after = [t for t in toks[i + 1 :] if t.pos in {"NOUN", "PROPN"} and not t.mention]
            if after:
                return after[0].lemma
        before = [
            t
            for t in reversed(toks[:i])
            if t.pos in {"VERB", "NOUN", "ADJ"} and not t.mention and t.lemma != bridge
        ]
        if before:
            word = before[0]
            if word.lemma == "come" or word.lower == "came":
                return "come out"
            return word.lower if word.pos == "VERB" else word.lemma
    return None


def _bridge_noun(toks: list[_Tok], attribute: str | None) -> str | None:
    """The relation every compared name is followed through ("the director who ...")."""
    head = _wh_head(toks)
    for tok in toks:
        if tok.mention or tok.pos != "NOUN":
            continue
        if tok.lemma in _CLASS_WORDS or tok.lemma in {head, attribute}:
            continue
        if tok.lemma in _ATTRIBUTE_TYPES or tok.lower in _COMPARATIVES:
            continue
        return tok.lemma
    return None


# ---------------------------------------------------------------------- chains


@dataclass(frozen=True, slots=True)
class _Rel:
    words: str
    inverse: bool = False
    kind_of: str = ""  # the noun a relative clause describes (its type)
    read: bool = False  # the question's verb: a value read off the last page


def _chain(toks: list[_Tok], anchor: int) -> list[_Rel]:
    """Relations leading away from the anchor name, innermost first.

    Inside out: possessives ("X's mother"), "of"/"in" phrases and relative clauses
    ("the association which published X") to the left, then clauses that describe a
    noun ("the country where X is located", "the country X is from"), and so on until
    the question's own words: its verb ("When did ... die?") is read off the last page.
    """
    chain: list[_Rel] = []
    # Possessives to the right: "X 's mother 's husband"
    j = anchor + 1
    while j + 1 < len(toks) and toks[j].lower in {"'s", "'"}:
        words, j = _noun_phrase_right(toks, j + 1)
        if not words:
            break
        chain.append(_Rel(words))
    i = anchor - 1
    reduced = i >= 1 and toks[i - 1].lower in {"the", "a", "an"} and _stranded(toks, j)
    if not reduced:  # "the country X is located in?" keeps "country"
        i -= _kind_before_name(toks, i)
        i = _skip_class(toks, i)
    while True:
        rels, i = _left_chain(toks, i)
        chain += rels
        clause = _where_clause(toks, i, j)
        if clause is None:
            break
        rel, i, j = clause
        chain.append(rel)
    verb = _verb_after(toks, j) or _verb_after(toks, 0, stop=i + 1)
    if verb and not any(r.words == verb for r in chain):
        chain.append(_Rel(verb, read=True))
    elif chain and chain[-1].words in _ATTRIBUTE_TYPES:
        chain[-1] = _Rel(chain[-1].words, read=True)
    elif (head := _wh_head(toks)) in _ATTRIBUTE_TYPES:
        chain.append(_Rel(head or "", read=True))
    return chain


def _kind_before_name(toks: list[_Tok], i: int) -> bool:
    """Whether ``toks[i]`` is a noun between a determiner and a name: "the brand Stay
    Puft", "the supplier Vandelay" say what kind the name is, not a relation."""
    return (
        0 < i < len(toks) - 1
        and toks[i].pos == "NOUN"
        and toks[i + 1].mention is not None
        and toks[i - 1].lower in {"the", "a", "an"}
    )


_PREPS = frozenset({"of", "in", "on", "at", "for", "from", "by"})


def _stranded(toks: list[_Tok], j: int) -> bool:
    """Whether a clause from ``j`` ends in a stranded preposition ("is located in?")."""
    r = j
    while r < len(toks) and toks[r].pos in {"AUX", "PART", "VERB", "ADV"} and not toks[r].mention:
        r += 1
    end = r + 1 >= len(toks) or toks[r + 1].text in {"?", ","}
    return r < len(toks) and toks[r].pos == "ADP" and r > j and end


_GENERIC = frozenset({"name", "kind", "type", "term", "sort"})


def _skip_class(toks: list[_Tok], i: int) -> int:
    """Skip "the film", "the village of" right before a name."""
    while i >= 0 and (toks[i].lower in _CLASS_WORDS or toks[i].lower in {"the", "a", "an"}):
        i -= 1
    # "the village of X", not "the parent company of X"
    if (
        i >= 1
        and toks[i].lower == "of"
        and toks[i - 1].lower in _CLASS_WORDS
        and (i < 2 or toks[i - 2].lower in {"the", "a", "an"})
    ):
        return _skip_class(toks, i - 2)
    return i


def _left_chain(toks: list[_Tok], i: int) -> tuple[list[_Rel], int]:
    """ "of"/"in" phrases and relative clauses ending at ``i``, innermost first."""
    chain: list[_Rel] = []
    while i >= 0:
        if toks[i].lower in _PREPS and i > 0 and toks[i - 1].pos in {"NOUN", "ADJ"}:
            words, i = _noun_phrase_left(toks, i - 1)
            if not words:
                break
            if words not in _GENERIC:
                chain.append(_Rel(words))
            continue
        clause = _relative_clause(toks, i)
        if clause is None:
            break
        verb, noun, i = clause
        # "the association which published X": ? —published→ X, an association.
        chain.append(_Rel(verb, inverse=True, kind_of=noun))
    return chain, i


def _where_clause(toks: list[_Tok], i: int, j: int) -> tuple[_Rel, int, int] | None:
    """ "the N (where|in which|that)? <done> [is] V [prep]": a clause describing N, whose
    verb follows the part already read. Returns the relation and the new (left, right)
    boundaries."""
    k = i
    if k >= 0 and toks[k].lower in {"where", "which", "that", "whom", "whose"}:
        k -= 1
        if k >= 0 and toks[k].pos == "ADP":
            k -= 1  # "in which"
    noun, before = _noun_phrase_left(toks, k)
    if not noun or noun in _GENERIC:
        return None
    r = j
    while r < len(toks) and toks[r].pos in {"AUX", "PART", "DET"} and toks[r].mention is None:
        r += 1
    # One verb or noun ("born", "located", "a citizen", "part"), with its preposition when
    # one follows ("part of", "played for") and does not open an outer phrase ("in the").
    if r >= len(toks) or toks[r].mention is not None or toks[r].pos not in {"VERB", "NOUN"}:
        return None
    if toks[r].lemma == "do":
        return None
    words = [toks[r].lower]
    r += 1
    opens_phrase = r + 1 < len(toks) and toks[r + 1].pos == "DET"
    if r < len(toks) and toks[r].pos == "ADP" and toks[r].mention is None and not opens_phrase:
        words.append(toks[r].lower)
        r += 1
    while r < len(toks) and toks[r].text == ",":
        r += 1
    return _Rel(" ".join(words), kind_of=noun), before, r


def _verb_after(toks: list[_Tok], start: int, stop: int | None = None) -> str:
    """The first content verb in ``toks[start:stop]``, with its particle ("lived in")."""
    for n in range(start, len(toks) if stop is None else stop):
        if toks[n].pos == "VERB" and toks[n].lemma not in {"be", "do"} and toks[n].mention is None:
            if n + 1 < len(toks) and toks[n + 1].pos == "ADP":
                return f"{toks[n].lower} {toks[n + 1].lower}"
            return toks[n].lower
    return ""


def _noun_phrase_right(toks: list[_Tok], j: int) -> tuple[str, int]:
    words = []
    while j < len(toks) and toks[j].pos in {"ADJ", "NOUN"} and toks[j].mention is None:
        words.append(toks[j].lower)
        j += 1
    return " ".join(words), j


def _noun_phrase_left(toks: list[_Tok], i: int) -> tuple[str, int]:
    """The noun phrase ending at ``i`` ("the first president"), and the index before it."""
    words: list[str] = []
    while i >= 0 and toks[i].pos in {"ADJ", "NOUN"} and toks[i].mention is None:
        words.insert(0, toks[i].lower)
        i -= 1
    if not words:
        return "", i
    phrase = " ".join(words)
    # "place of birth of ...": the relation noun and its "X of" head are one relation.
    if i >= 1 and toks[i].lower == "of" and f"{toks[i - 1].lower} of {phrase}" in _COMPOUNDS:
        phrase = f"{toks[i - 1].lower} of {phrase}"
        i -= 2
    while i >= 0 and toks[i].lower in {"the", "a", "an"}:
        i -= 1
    return phrase, i


def _relative_clause(toks: list[_Tok], i: int) -> tuple[str, str, int] | None:
    """ "the N (which|that|who) [was] V [by] X", "the N V by X": (V words, N, index before
    N)."""
    k = i
    verb: list[str] = []
    while k >= 0 and toks[k].pos in {"ADP", "VERB", "AUX", "PART"} and toks[k].mention is None:
        if toks[k].pos != "AUX":
            verb.insert(0, toks[k].lower)
        k -= 1
    if verb and len(verb) > 1 and verb[-1] == "by" and k >= 0 and toks[k].pos == "NOUN":
        k += 1  # "the company acquired by X": a clause without its "which was"
    elif not verb or k < 1 or toks[k].lower not in {"which", "that", "who", "whom"}:
        return None
    noun, before = _noun_phrase_left(toks, k - 1)
    if not noun:
        return None
    return " ".join(verb), noun, before


def _wh_head(toks: list[_Tok]) -> str | None:
    """The noun a "which/what" asks for ("Which film ...": film)."""
    for i, tok in enumerate(toks[:-1]):
        if tok.lower in {"which", "what"} and toks[i + 1].pos == "NOUN":
            return toks[i + 1].lemma
    return None


# ---------------------------------------------------------------------- building


class _Builder:
    def __init__(self, question: str) -> None:
        self.question = question
        self.steps: list[Step] = []

    def _add(self, kind: str, **fields: Any) -> str:
        sid = f"s{len(self.steps) + 1}"
        self.steps.append(Step.model_validate({"id": sid, "kind": kind, **fields}))
        return sid

    def _plan(self, note: str = "") -> Plan:
        return Plan(question=self.question, steps=tuple(self.steps), planner="rules", note=note)

    def single_shot(self, why: str, names: list[str] | None = None) -> Plan:
        links = [self._add("link", mention=n) for n in dict.fromkeys(names or [])]
        look = self._add("lookup", depends_on=tuple(links), query=self.question)
        self._add("answer", depends_on=(look,), subject=look)
        return self._plan(f"single-shot retrieval: {why}")

    def _follow(self, start: str, chain: list[_Rel], expects: tuple[str, ...]) -> str:
        current = start
        for n, rel in enumerate(chain):
            last = n == len(chain) - 1
            types = (expects if last and expects else ()) or _types_of(rel.kind_of or rel.words)
            kind = "read" if rel.read else "traverse"
            current = self._add(
                kind,
                depends_on=(current,),
                subject=current,
                relation=rel.words,
                target=rel.kind_of or None,
                inverse=rel.inverse,
                answer_types=types,
            )
        return current

    def chained(
        self, names: list[str], anchor: str, chain: list[_Rel], expects: tuple[str, ...]
    ) -> Plan:
        start = self._add("link", mention=anchor)
        for other in dict.fromkeys(n for n in names if n != anchor):
            self._add("link", mention=other)  # context: its page is evidence too
        last = self._follow(start, chain, expects)
        self._add("answer", depends_on=(last,), subject=last)
        return self._plan()

    def joined(self, names: list[str]) -> Plan:
        """Two names and no relation between them in words: what joins them in the graph
        (a path of facts), plus the single shot's lookup."""
        first, second = (self._add("link", mention=n) for n in names)
        path = self._add("path", depends_on=(first, second), subject=first, object=second)
        look = self._add("lookup", depends_on=(path,), query=self.question)
        self._add("answer", depends_on=(look,), subject=look)
        return self._plan("no relation in words between the names: a path of facts joins them")

    def comparison(
        self, toks: list[_Tok], pair: tuple[int, int, CompareOp], expects: tuple[str, ...]
    ) -> Plan:
        i, j, op = pair
        head = _wh_head(toks)
        attribute = _attribute(toks, None)
        bridge = _bridge_noun(toks, attribute)
        attribute = _attribute(toks, bridge) or attribute
        chain: list[_Rel] = []
        if bridge:
            chain.append(_Rel(bridge))
        if attribute:
            chain.append(_Rel(attribute, read=True))
        finals = []
        for index in (i, j):
            start = self._add("link", mention=toks[index].mention)
            finals.append(self._follow(start, chain, ()) if chain else start)
        compare = self._add(
            "compare", depends_on=tuple(finals), operands=tuple(finals), op=op,
            relation=attribute,
        )  # fmt: skip
        # "Which film ...?" / "Who ...?" asks for one of the names; yes/no asks whether.
        self._add("answer", depends_on=(compare,), subject=compare, answer_types=expects)
        note = "" if attribute else "comparison without an attribute to read"
        del head
        return self._plan(note)


def _types_of(words: str) -> tuple[str, ...]:
    """Entity types a relation's values have ("director" → PERSON, "born" → DATE)."""
    if words in _ATTRIBUTE_TYPES:
        return _ATTRIBUTE_TYPES[words]
    last = words.rsplit(maxsplit=1)[-1]
    if last in HEAD_TYPES:
        return tuple(sorted(HEAD_TYPES[last]))
    if re.sub(r"(ed|s)$", "", last) in {"bear", "born", "die", "releas", "found", "establish"}:
        return ("DATE",)
    if last in _DATE_VERBS:
        return ("DATE",)
    return ()

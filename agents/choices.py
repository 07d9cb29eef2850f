"""Choice questions ("which …, A or B?": what the options are, and which one the
claims single out) and shared-value questions ("What occupation do A and B share?").

The question says one of its options is the answer, so a choice is recomputed, never
guessed: from the dates the claims give for each option (the date of the event the
question asks about: a death for "who died first", a birth for "who is older", a
founding for "which was founded earlier"), from the amounts they give (the counted
noun the question names: "more species" compares numbers of species; "taller" compares
lengths in one unit), or — when the question compares nothing — from what each
option's own claims say: the option whose claims state the question's words
("from England", "a Macedonian weekly") where the other's do not.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from agents.clauses import path_between
from agents.naming import (
    anchors_of,
    attribute_of,
    names,
    relation_words,
    shortened,
    spans_of,
    words,
)
from agents.question import HEAD_TYPES, stem
from agents.values import country_key, month_number, quantities
from graph import normalize_name
from graph.provenance import Verdict

__all__ = [
    "EARLY",
    "LATE",
    "AnswerCheck",
    "choose",
    "dated",
    "mentions",
    "options_of",
    "shared_by",
    "shared_value",
]


@dataclass(frozen=True, slots=True)
class AnswerCheck:
    """An answer's verdict (``None``: there was no answer to check) and why."""

    verdict: Verdict | None
    reason: str


EARLY = frozenset("first earliest earlier older oldest before sooner elder eldest".split())
LATE = frozenset("last latest later younger youngest after newer newest recent recently".split())
_GREATER = frozenset(
    "longer longest larger largest bigger biggest higher highest taller tallest more most "
    "greater greatest heavier heaviest wider widest deeper deepest richer richest".split()
)
_LESSER = frozenset(
    "shorter shortest smaller smallest lower lowest fewer fewest less least lighter "
    "lightest narrower narrowest shallower shallowest poorer poorest".split()
)
# units that convert to one base unit (lengths in metres, weights in kilograms)
_BASE = {
    "kilometre": ("metre", 1000.0),
    "metre": ("metre", 1.0),
    "mile": ("metre", 1609.344),
    "foot": ("metre", 0.3048),
    "kilogram": ("kilogram", 1.0),
    "pound-weight": ("kilogram", 0.45359237),
    "tonne": ("kilogram", 1000.0),
}
_JOINED_RANGE = re.compile(r"^(\d{3,4})[-\u2013\u2014](\d{3,4})$")
_DEATH = frozenset("die dead death kill killed".split())
_BIRTH = frozenset("bear born birth old young elder".split())
#: lower-case words that stay inside a name ("Mahbub ul Haq", "Selle v. Gibb")
_JOINERS = frozenset(
    "of the de da di del della du von van der den la le al ul el bin y and v. v &".split()
)
_QUESTION_OPENERS = frozenset(
    "is was are were do does did can could has have had which who".split()
)
_DASHES = frozenset({"-", "\u2013", "\u2014", "to"})


# -- the options ---------------------------------------------------------------------------


def options_of(asked: Any) -> list[str]:
    """The two options of a "which …, A or B?" question, as written ([] for others).

    Read from the question's surface: the option after "or" runs to the end of its
    clause; the one before it starts after the clause's comma or colon ("Which band,
    Letters to Cleo or Screaming Trees, …"), or is the name that ends just before "or"
    ("Who was born first Mahbub ul Haq or Ibn Arabi?", "Is Gasherbrum II or Nuptse
    closer …"). An "or" between lower-case words ("in or around", "left-hand or
    right-hand") joins no options.
    """
    tokens = [t for t in asked if not t.is_space]
    ors = [i for i, t in enumerate(tokens) if t.lower_ == "or" and 0 < i < len(tokens) - 1]
    for at in reversed(ors):
        first = _before(tokens, at)
        second = _after(tokens, at, bounded=first is not None and first[1])
        if first is None or second is None:
            continue
        pair = [_clean(first[0]), _clean(second)]
        if all(pair) and normalize_name(pair[0]) != normalize_name(pair[1]):
            return pair
    return []


def _before(tokens: list[Any], at: int) -> tuple[str, bool] | None:
    """The option before "or", and whether the options end the question (then the
    other runs to the end of its clause): a comma or colon opened it, or other words of
    the question stand before it."""
    end = at - 1 if tokens[at - 1].text == "," else at
    start = end
    while start > 0 and not (tokens[start - 1].is_punct and tokens[start - 1].text in ",:;?"):
        start -= 1
    if start > 0 and end - start <= 10 and _optionlike(tokens[start:end]):
        return _text(tokens[start:end]), True
    start = end
    while start > 0 and _in_name(tokens, start - 1, end):
        start -= 1
    while start < end and (
        (tokens[start].text in _JOINERS and tokens[start].text != "the") or tokens[start].is_punct
    ):
        start += 1
    if start >= end or not _optionlike(tokens[start:end]):
        return None
    opener = start == 1 and tokens[0].lower_ in _QUESTION_OPENERS
    return _text(tokens[start:end]), not (start == 0 or opener)


def _in_name(tokens: list[Any], i: int, end: int) -> bool:
    token = tokens[i]
    if token.text[:1].isupper() or _digits(token) or token.text in _DASHES | {"'s", "&", "."}:
        return not (i == 0 and token.lower_ in _QUESTION_OPENERS)
    # a joiner only inside a name: a capitalised word stands before it
    return token.lower_ in _JOINERS and i > 0 and tokens[i - 1].text[:1].isupper() and i + 1 < end


def _after(tokens: list[Any], at: int, *, bounded: bool) -> str | None:
    start = at + 1
    end = start
    while end < len(tokens) and not (tokens[end].is_punct and tokens[end].text in ",:;?!"):
        end += 1
    if end > start and tokens[end - 1].text == ".":
        end -= 1
    span = tokens[start:end]
    if not bounded:
        # the options stand before the rest of the question ("Is A or B closer to …"):
        # the second is the name that follows "or"
        stop = start
        while stop < len(tokens) and _in_name(tokens, stop, len(tokens)):
            stop += 1
        span = tokens[start:stop] if stop > start else span
    if not span or len(span) > 16 or not _optionlike(span):
        return None
    return _text(span)


def _optionlike(span: list[Any]) -> bool:
    """Whether a run of words can be an option: it starts with a capital, a number or
    "the" before one, and is not a clause of lower-case words."""
    if not span:
        return False
    head = span[1] if span[0].lower_ in ("the", "a", "an") and len(span) > 1 else span[0]
    return bool(head.text[:1].isupper() or _digits(head))


def _digits(token: Any) -> bool:
    return any(c.isdigit() for c in token.text)


def _text(span: list[Any]) -> str:
    doc = span[0].doc
    return str(doc[span[0].i : span[-1].i + 1].text)


def _clean(option: str) -> str:
    return option.strip(" ,:;?.\"'").removeprefix("the ").strip()


def mentions(text_words: list[str], option: str) -> bool:
    """Whether a text names an option: its words in order, or the option as a shortened
    name of one the text gives ("Philip Labonte" in "Philip Steven Labonte")."""
    wanted = words(option)
    if not wanted:
        return False
    joined = f" {' '.join(text_words)} "
    if f" {' '.join(wanted)} " in joined:
        return True
    return len(wanted) > 1 and any(
        shortened(wanted, text_words[i : i + len(wanted) + 2])
        for i, w in enumerate(text_words)
        if w == wanted[0]
    )


def _about(texts: list[Any], name: str) -> list[Any]:
    """The parsed claims that name ``name`` (as written, shortened or fuller)."""
    return [d for d in texts if mentions(words(d.text), name) or names(d, name)]


# -- the choice ----------------------------------------------------------------------------


def choose(asked: Any, answer: str, options: list[str], texts: list[Any]) -> AnswerCheck:
    """Whether ``answer`` is the option the claims single out."""
    key = _bare(answer)
    chosen = next((o for o in options if _bare(o) == key), None)
    if chosen is None:  # the option's fuller name ("Thomas Loren Friedman")
        chosen = next((o for o in options if mentions(words(answer), o)), None)
    if chosen is None:
        return AnswerCheck("unsupported", f"the answer is none of the options {options}")
    said = {t.lower_ for t in asked}
    # "born first", "released earlier", "published most recently" (not "the first
    # Russian composer": a rank, not a time)
    inside = {w for o in options for w in words(o)}
    timed = {t.lower_ for t in asked if t.dep_ != "amod" or t.head.lower_ in inside}
    early, late = bool(timed & EARLY), bool(timed & LATE)
    if early != late:
        return _by_date(asked, chosen, options, texts, early=early)
    more, less = bool(said & _GREATER), bool(said & _LESSER)
    if more != less:
        return _by_amount(asked, chosen, options, texts, greater=more)
    picked, reason = _singled_out(asked, options, texts)
    if picked is None:
        return AnswerCheck("unsupported", reason)
    return AnswerCheck("supported" if picked == chosen else "contradicted", reason)


def _by_date(
    asked: Any, chosen: str, options: list[str], texts: list[Any], *, early: bool
) -> AnswerCheck:
    event = _event(asked)
    # "Which film has the director who is older": the options are things (films), the
    # dates are their people's ("Which tennis player is younger": the options' own)
    people = [
        t
        for t in asked
        if t.pos_ == "NOUN" and "PERSON" in HEAD_TYPES.get(t.lemma_.lower(), frozenset())
    ]
    kinds = [t.head for t in asked if t.lower_ in ("which", "what") and t.dep_ == "det"]
    things = bool(kinds) and all(k not in people for k in kinds)
    role = things and bool(people)
    dates = {o: date_for(o, texts, event, role=role, things=things) for o in options}
    missing = [o for o, d in dates.items() if d is None]
    if missing:
        what = {"death": "a date of death", "birth": "a date of birth"}.get(event[0], "a date")
        return AnswerCheck(
            "unsupported", f"no supported claim gives {what} for {missing[0]!r} to compare"
        )
    if len(set(dates.values())) < len(dates):
        return AnswerCheck("unsupported", "the cited dates are the same; they do not decide")
    pick = min if early else max
    winner = pick(options, key=lambda o: dates[o] or (0, 0, 0))
    cited = ", ".join(f"{o} {_shown(dates[o])}" for o in options)
    if winner == chosen:
        return AnswerCheck("supported", f"recomputed from the cited dates: {cited}")
    return AnswerCheck("contradicted", f"the cited dates ({cited}) give {winner!r}")


def _shown(date: tuple[int, int, int] | None) -> str:
    if date is None:
        return "?"
    year, month, day = date
    return "-".join(str(p) for p in (year, month, day) if p) if month else str(year)


def _event(asked: Any) -> tuple[str, frozenset[str]]:
    """What the question dates: a death, a birth, or the event its verbs and nouns name
    ("founded", "released", "formed") as stems."""
    lemmas = {t.lemma_.lower() for t in asked} | {t.lower_ for t in asked}
    if lemmas & _DEATH:
        return "death", frozenset()
    if lemmas & {"bear", "born", "birth"}:
        return "birth", frozenset()
    if lemmas & _BIRTH:
        return "age", frozenset()  # a person's birth, a thing's first date
    stems = frozenset(
        stem(t.lemma_.lower())
        for t in asked
        if t.pos_ in ("VERB", "NOUN") and not t.is_stop and t.lower_ not in EARLY | LATE
    )
    return "event", stems


def dated(asked: Any, name: str, texts: list[Any]) -> tuple[int, int, int] | None:
    """The date the claims give ``name`` for the event the question asks about ("Is A
    older than B?": a person's birth, a thing's own date)."""
    return date_for(name, texts, _event(asked))


def date_for(
    option: str,
    texts: list[Any],
    event: tuple[str, frozenset[str]],
    depth: int = 1,
    *,
    role: bool = False,
    things: bool = False,
) -> tuple[int, int, int] | None:
    """The date the first claim about ``option`` that gives one states for the event,
    or — when none does — the date a claim gives for a person or organisation the
    option's claims name ("the film whose director died first"). ``role``: the question
    names a person's role ("the director who is older"), so a thing's age, birth or
    death is its person's; ``things``: the question says the options are things ("which
    film"), whatever the parser typed them."""
    own = _about(texts, option)
    people = {e.text for d in own for e in d.ents if e.label_ == "PERSON"}
    # the question's "which film" says what the options are, whatever the parser typed
    person = not things and any(
        mentions(words(p), option) or mentions(words(option), p) for p in people
    )
    lived = person or (not things and any(_aside_after(d, option) for d in own))
    if event[0] == "age":
        # a person's age is a birth date (so is a life written after a name: "Ada Brook
        # (1894-1945)"); a thing's age is its own date, unless a role is asked about
        event = ("birth", frozenset()) if lived or role else ("event", frozenset())
    if role and event[0] in ("birth", "death"):
        own = []  # "the film whose director was born first": not the film's own date
    for doc in own:
        found = _event_date(doc, event)
        if found is not None:
            return found
    if depth == 0 or person:
        return None  # a person's own dates are not read off someone they name
    for doc in _about(texts, option):
        for ent in doc.ents:
            if ent.label_ in ("PERSON", "ORG") and not set(words(ent.text)) & set(words(option)):
                found = date_for(ent.text, texts, event, depth - 1)  # the person's own
                if found is not None:
                    return found
    return None


def _aside_after(doc: Any, option: str) -> bool:
    """Whether a parenthetical aside follows the option's name in a parsed claim."""
    return any(span.end < len(doc) and doc[span.end].text == "(" for span in spans_of(doc, option))


def _event_date(doc: Any, event: tuple[str, frozenset[str]]) -> tuple[int, int, int] | None:
    """The date a parsed claim gives for the event (None: it gives none for it)."""
    tokens = list(doc)
    dates = _dates(doc)
    kind, stems = event
    if kind in ("death", "birth"):
        return _life_date(tokens, dates, kind)
    if not dates:
        return None
    cues = [t for t in tokens if stems and stem(t.lemma_.lower()) in stems]
    if cues:
        # the date nearest the event's word in the parse ("acquired by Norland in 2015",
        # not "incorporated in 1998" next to it), then in the text
        return min(
            dates,
            key=lambda d: min((_tree_distance(tokens[d[0]], c), abs(d[0] - c.i)) for c in cues),
        )[1]
    return dates[0][1]


def _life_date(
    tokens: list[Any], dates: list[tuple[int, tuple[int, int, int]]], kind: str
) -> tuple[int, int, int] | None:
    """A birth or death date: after "born"/"died", as one end of a life written as a
    range ("(1894 - 1945)", with any dash, also as one word), or — for a birth — the
    lone date in an aside ("Tom Lenz (1950) ...")."""
    joined = next((m for t in tokens if (m := _JOINED_RANGE.match(t.text))), None)
    if joined is not None:
        return (int(joined.group(2 if kind == "death" else 1)), 0, 0)
    cue = _DEATH | {"d."} if kind == "death" else _BIRTH | {"b."}
    for at, date in dates:
        if any(t.lemma_.lower() in cue or t.lower_ in cue for t in tokens[max(0, at - 6) : at]):
            return date
    ranged = _range(tokens, dates)
    if ranged is not None:
        return ranged[1] if kind == "death" else ranged[0]
    opened = next((t.i for t in tokens if t.text == "("), None)
    closed = next((t.i for t in tokens if t.text == ")"), None)
    lone = [d for at, d in dates if opened is not None and closed and opened < at < closed]
    return lone[0] if kind == "birth" and len(lone) == 1 else None


def _tree_distance(a: Any, b: Any) -> int:
    path = path_between(a, b)
    return len(path) if path is not None else len(a.doc)


def _dates(doc: Any) -> list[tuple[int, tuple[int, int, int]]]:
    """The dates a parsed text states, with the token each year stands at."""
    out = []
    values = quantities(doc)
    for n, value in enumerate(values):
        at = value.at
        # "a 1971 report": a year the parser dates, though a noun follows it
        dated = doc[at].ent_type_ == "DATE" and re.fullmatch(r"1\d{3}|20\d{2}", doc[at].text)
        if not (value.year or dated):
            continue
        day, month = 0, 0
        if n > 0 and values[n - 1].unit.startswith("day:"):
            day = int(values[n - 1].value)
            month = month_number(values[n - 1].unit[4:])
        out.append((at, (int(value.value), month, day)))
    return out


def _range(
    tokens: list[Any], dates: list[tuple[int, tuple[int, int, int]]]
) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """A life or a run written as a range ("(March 10, 1892 - March 1, 1952)", with any dash)."""
    for (a, first), (b, second) in itertools.pairwise(dates):
        between = tokens[a + 1 : b]
        if any(t.text in _DASHES for t in between) and len(between) <= 5:
            return first, second
    return None


def _by_amount(
    asked: Any, chosen: str, options: list[str], texts: list[Any], *, greater: bool
) -> AnswerCheck:
    """A choice by size: the options' cited amounts of the counted noun (or in one unit
    of length or weight), compared."""
    counted = _counted(asked)
    amounts: dict[str, tuple[str, float]] = {}
    for option in options:
        for doc in _about(texts, option):
            found = _amount(doc, counted)
            if found is not None:
                amounts[option] = found
                break
    missing = [o for o in options if o not in amounts]
    if missing:
        what = f"a number of {counted}" if counted else "an amount"
        return AnswerCheck("unsupported", f"no supported claim gives {what} for {missing[0]!r}")
    if len({u for u, _ in amounts.values()}) > 1:
        return AnswerCheck("unsupported", "the cited amounts are in units that do not compare")
    if len({v for _, v in amounts.values()}) < len(amounts):
        return AnswerCheck("unsupported", "the cited amounts are the same; they do not decide")
    pick = max if greater else min
    winner = pick(options, key=lambda o: amounts[o][1])
    cited = ", ".join(f"{o} {amounts[o][1]:g} {amounts[o][0]}".strip() for o in options)
    if winner == chosen:
        return AnswerCheck("supported", f"recomputed from the cited amounts: {cited}")
    return AnswerCheck("contradicted", f"the cited amounts ({cited}) give {winner!r}")


def _counted(asked: Any) -> str | None:
    """The noun a comparison counts ("more species" → "species", "the larger
    population" → "population"), if it names one."""
    for token in asked:
        if token.lower_ in _GREATER | _LESSER and token.head.pos_ == "NOUN":
            return str(token.head.lemma_.lower())
    return None


def _amount(doc: Any, counted: str | None) -> tuple[str, float] | None:
    values = [q for q in quantities(doc) if not q.year]
    if counted is None:
        for value in values:
            unit, scale = _BASE.get(value.unit, (value.unit, 1.0))
            if unit in ("metre", "kilogram") or not value.unit:
                return unit, value.value * scale
        return None
    for value in values:
        if value.unit and (value.unit == counted or stem(value.unit) == stem(counted)):
            return counted, value.value
    # "a population of 8,211", "its population was 24 million"
    tokens = list(doc)
    cues = [t.i for t in tokens if t.lemma_.lower() == counted]
    for value in values:
        at = value.at
        if not value.unit and any(0 < at - c <= 4 for c in cues):
            return counted, value.value
    # "employs 2,800 people" for "more employees": the first amount, whose unit must
    # then agree with the other option's
    return (values[0].unit, values[0].value) if values else None


def _singled_out(asked: Any, options: list[str], texts: list[Any]) -> tuple[str | None, str]:
    """The option whose own claims state more of the question's words than the other's
    ("Which band is from England, A or B?": "B were an English band")."""
    named = {w for o in options for w in words(o)}
    wanted = list(
        dict.fromkeys(
            [
                *(w for w in relation_words(asked, options) if w not in named),
                # the names it gives besides the options ("from England")
                *(
                    t.lemma_.lower()
                    for t in asked
                    if t.pos_ == "PROPN" and t.lower_ not in named and not t.is_stop
                ),
            ]
        )
    )
    if not wanted:
        return None, "the question names nothing that tells its options apart"
    # verbs ("include", "rely") weigh nothing alone: a thing is told apart by what it is
    verbs = {t.lemma_.lower() for t in asked if t.pos_ in ("VERB", "AUX")}
    covered: dict[str, list[str]] = {}
    for option in options:
        own = _about(texts, option)
        stated = [t for d in own for t in d if not _negated(t)]
        lemmas = {t.lemma_.lower() for t in stated} | {t.lower_ for t in stated}
        lemmas |= {base for w in lemmas for base in _unmarked(w)}
        stems = {stem(w) for w in lemmas}
        countries = {c for t in stated if (c := country_key(t.text))}
        covered[option] = [
            w
            for w in wanted
            if w in lemmas or stem(w) in stems or (country_key(w) or "") in countries - {""}
        ]
        if not own:
            return None, f"no supported claim names {option!r}"
    ranked = sorted(options, key=lambda o: -len(covered[o]))
    best, other = ranked[0], ranked[1]
    content = [w for w in wanted if w not in verbs]
    if 3 * len([w for w in covered[best] if w not in verbs]) < len(content) or not content:
        return None, (
            f"the claims about {best!r} state too few of the question's words "
            f"({', '.join(covered[best]) or 'none'} of {', '.join(wanted)}) to single it out"
        )
    if len(covered[best]) == len(covered[other]):
        return None, (
            f"the claims about {options[0]!r} and {options[1]!r} state the question's words "
            "alike; they do not single one out"
        )
    said = ", ".join(repr(w) for w in covered[best] if w not in covered[other])
    return best, f"the claims about {best!r} state {said}; those about {other!r} do not"


def _negated(token: Any) -> bool:
    """Whether a word stands under a negation ("not from England", "never an actor",
    "no longer a member")."""
    node = token
    for _ in range(8):
        if any(c.dep_ == "neg" or c.lower_ in ("never", "no") for c in node.children):
            return True
        if node.head.i == node.i:
            return False
        node = node.head
    return False


def _unmarked(word: str) -> tuple[str, ...]:
    """The unmarked forms of a feminine noun ("actress" → "actor", "waitress" →
    "waiter", "hostess" → "host")."""
    if word.endswith("ress") and len(word) > 6:
        return word[:-4] + "or", word[:-4] + "er"
    if word.endswith("ess") and len(word) > 5:
        return (word[:-3],)
    return ()


def _bare(name: str) -> str:
    return re.sub(r"\s+", " ", normalize_name(name).removeprefix("the ")).strip(" .")


# -- shared values -------------------------------------------------------------------------

_SHARING = frozenset("common share shared both".split())


def shared_by(asked: Any) -> list[str]:
    """The names a "what … do A and B have in common / share / both …" question asks
    about ([] for other questions: yes/no questions and choices ask something else)."""
    tokens = [t for t in asked if not t.is_punct]
    if not tokens or tokens[0].lower_ in _QUESTION_OPENERS - {"which", "who"}:
        return []
    said = {t.lower_ for t in tokens}
    if not said & _SHARING or not said & {"what", "which", "who", "whom"}:
        return []
    if options_of(asked):
        return []
    named = anchors_of(asked)
    return named[:2] if len(named) >= 2 else []


def shared_value(answer: str, sharing: list[str], texts: list[Any]) -> AnswerCheck:
    """Whether the claims say the answer of each name (what it is: "A is an English
    cinematographer and film director", "B was an American film editor and director")."""
    for name in sharing:
        own = _about(texts, name)
        if not own:
            return AnswerCheck("unsupported", f"no supported claim names {name!r}")
        if not attribute_of(answer, own, [name]):
            return AnswerCheck("unsupported", f"no supported claim says {name!r} is {answer!r}")
    said = " and ".join(repr(n) for n in sharing)
    return AnswerCheck("supported", f"the claims say {said} each is {answer!r}")

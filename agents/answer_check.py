"""Whether an answer follows from its supported claims (the answer's verdict).

Claims are validated one by one (:class:`~agents.validation.ProvenanceValidator`); this
module checks the answer line itself against the claims that came out ``supported``,
the same way for an extractive answer, a model's answer and one written elsewhere
(``threadline verify``):

- a **yes/no** answer to "are A and B the same X" / "is A older than B" is recomputed
  from the value each branch's claim states (nationalities normalised: "American" and
  "America" agree), and every branch must be cited;
- a **choice** ("which came first, A or B") must be one of the options, and is
  recomputed (:mod:`agents.choices`) from the date of the asked event, the counted
  amount, or what each option's own claims state;
- a **shared value** ("what occupation do A and B share") must be said of each name;
- a **number** must be a value a supported claim states, or the difference of two
  cited values;
- an **entity or value** must be named (whole words, not inside another word) in a
  supported claim; the claims must state the relation the question asks about (its
  nouns, adjectives and verbs, with kinship read both ways: "son of" states "mother");
  and the answer must fill the asked role there — the subject when the question asks
  who did something, not its object; the thing a "who is X" question describes, not the
  owner in "Scrooge's nephew".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.answerer import NOT_FOUND
from agents.choices import (
    EARLY,
    AnswerCheck,
    choose,
    dated,
    options_of,
    shared_by,
    shared_value,
)
from agents.entailment import Entailment
from agents.naming import (
    anchors_of as _anchors,
)
from agents.naming import (
    attribute_of as _attribute_of,
)
from agents.naming import (
    chained as _chained,
)
from agents.naming import (
    coreferent as _coreferent,
)
from agents.naming import (
    detached as _detached,
)
from agents.naming import (
    find as _find,
)
from agents.naming import (
    inside as _inside,
)
from agents.naming import (
    lacking as _lacking,
)
from agents.naming import (
    lemmas as _lemmas,
)
from agents.naming import (
    life_events as _life_events,
)
from agents.naming import (
    located_at as _located_at,
)
from agents.naming import (
    names as _names,
)
from agents.naming import (
    relation_words as _relation_words,
)
from agents.naming import (
    runs_in as _runs_in,
)
from agents.naming import (
    said as _said,
)
from agents.naming import (
    spans_of as _spans_of,
)
from agents.naming import (
    titled as _titled,
)
from agents.naming import (
    words as _words,
)
from agents.parsing import cached_parser
from agents.question import HEAD_TYPES
from agents.roles import filled_role
from agents.spans import answer_kind, sentence_views
from agents.values import country_key, quantities
from extractors import SpacyEntityExtractor
from graph import normalize_name
from graph.provenance import Claim, Verdict

__all__ = ["AnswerCheck", "AnswerChecker"]


_YES = frozenset({"yes", "true", "correct"})
_NO = frozenset({"no", "false", "incorrect"})
_AUX = frozenset("is was are were do does did can could has have had will would should".split())
_WH = frozenset("who whom whose what which when where why how".split())
# kinship and roles, read both ways ("X is the son of Y" states "Y is X's mother")
_INVERSES: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        ("mother", "father", "parent"), frozenset({"son", "daughter", "child", "children"})
    ),
    **dict.fromkeys(
        ("son", "daughter", "child", "children"),
        frozenset({"mother", "father", "parent", "parents"}),
    ),
    **dict.fromkeys(
        ("husband", "wife", "spouse"), frozenset({"husband", "wife", "spouse", "marry", "married"})
    ),
    **dict.fromkeys(("marry", "married"), frozenset({"husband", "wife", "spouse"})),
    **dict.fromkeys(("brother", "sister", "sibling"), frozenset({"brother", "sister", "sibling"})),
    **dict.fromkeys(("grandson", "granddaughter"), frozenset({"grandfather", "grandmother"})),
    **dict.fromkeys(("grandfather", "grandmother"), frozenset({"grandson", "granddaughter"})),
    "direct": frozenset({"director"}),
    "director": frozenset({"direct"}),
    "found": frozenset({"founder"}),
    "founder": frozenset({"found"}),
    "write": frozenset({"writer", "author"}),
    "author": frozenset({"write", "writer"}),
    "writer": frozenset({"write", "author"}),
    "compose": frozenset({"composer"}),
    "composer": frozenset({"compose"}),
    "produce": frozenset({"producer"}),
    "producer": frozenset({"produce"}),
    "die": frozenset({"death", "dead"}),
    "death": frozenset({"die"}),
    "bear": frozenset({"birth", "born"}),
    "birth": frozenset({"bear", "born"}),
}


class AnswerChecker:
    """Checks an answer against the question and the validated claims."""

    def __init__(self, *, extractor: SpacyEntityExtractor) -> None:
        self._parse = cached_parser(extractor)
        self._entailment = Entailment(extractor)

    def check(
        self, question: str | None, answer: str | None, claims: Sequence[Claim]
    ) -> AnswerCheck:
        """The answer's verdict given the claims (already validated)."""
        if (
            answer is None
            or not answer.strip()
            or normalize_name(answer) == normalize_name(NOT_FOUND)
        ):
            return AnswerCheck(None, "there is no answer to check")
        supported = [c for c in claims if c.verdict == "supported"]
        if not supported:
            return AnswerCheck("unsupported", "no claim supports the answer")
        # an entity answer reads each claim whole, and without its parenthetical asides
        # when it has any (an aside often breaks the parse of the sentence around it);
        # values (numbers, dates, options) are read once per claim
        views: list[tuple[Claim, str, bool]] = []
        for claim in supported:
            text = " ".join(claim.text.split())
            views.append((claim, text, True))
            main = " ".join(sentence_views(text)[0].split())
            if main != text:
                views.append((claim, main, False))
        texts = [self._parse(view) for _, view, _ in views]
        documents = [{str(d.document_id) for d in c.documents} for c, _, _ in views]
        titles = [tuple(n for d in c.documents for n in (d.title, *d.about)) for c, _, _ in views]
        whole = [i for i, (_, _, is_whole) in enumerate(views) if is_whole]
        key = normalize_name(answer).strip(" .")
        asked = self._parse(" ".join(question.split())) if question and question.strip() else None
        if asked is None:
            if key in _YES | _NO:
                return AnswerCheck("unsupported", "a yes/no answer needs its question")
            kept = _chained(texts, documents, answer)
            return _entity(None, answer, [texts[i] for i in kept])
        return self._asked(asked, answer, key, texts, (documents, titles), whole)

    def sharing(self, question: str) -> list[str]:
        """The names a "what do A and B have in common" question asks about ([] for
        other questions)."""
        text = " ".join(question.split())
        return shared_by(self._parse(text)) if text else []

    def options(self, question: str) -> list[str]:
        """The options of a "which …, A or B" question (empty for other questions)."""
        text = " ".join(question.split())
        return options_of(self._parse(text)) if text else []

    def _asked(
        self,
        asked: Any,
        answer: str,
        key: str,
        texts: list[Any],
        cited: tuple[list[set[str]], list[tuple[str, ...]]],
        whole: list[int],
    ) -> AnswerCheck:
        claims = [texts[i] for i in whole]  # one parse per claim, for reading values
        if key in _YES | _NO:
            checked = _yes_no(asked, key in _YES, claims)
            if checked is None:
                return self._stated(asked, key in _YES, claims)
            return checked
        options = options_of(asked)
        if options:
            return choose(asked, answer, options, claims)
        sharing = shared_by(asked)
        if sharing:
            return shared_value(answer, sharing, texts)
        if _asks_number(asked):
            return _number(answer, claims, self._parse(answer))
        kept = _chained(texts, cited[0], answer)
        return _entity(
            asked,
            answer,
            [texts[i] for i in kept],
            [cited[1][i] for i in kept],
            [cited[0][i] for i in kept],
        )

    def _stated(self, asked: Any, yes: bool, texts: list[Any]) -> AnswerCheck:
        """A yes/no answer to a question about one fact: the claims state the fact
        ("yes"), state the opposite ("no"), or neither (not verified)."""
        statement = _declarative(asked)
        judged = self._entailment.judge(statement, [t.text for t in texts])
        if judged.verdict == "unsupported":
            return AnswerCheck(
                "unsupported", f"the supported claims neither state nor deny {statement!r}"
            )
        holds = judged.verdict == "supported"
        return AnswerCheck(
            "supported" if holds == yes else "contradicted",
            f"the supported claims {'state' if holds else 'deny'} {statement!r} → "
            f"{'yes' if holds else 'no'}",
        )


def _declarative(asked: Any) -> str:
    """A yes/no question as the statement it asks about ("Did Acme acquire Globex?" →
    "Acme acquire Globex", "Is Sam Ortega American?" → "Sam Ortega is American")."""
    tokens = [t for t in asked if not (t.is_punct and t.i == len(asked) - 1)]
    first, rest = tokens[0], tokens[1:]
    if first.lemma_ == "do":
        return " ".join(t.text for t in rest)
    subject = next(
        (c for c in first.head.children if c.dep_ in ("nsubj", "nsubjpass", "expl")), None
    )
    if subject is None:
        return " ".join(t.text for t in rest)
    end = max(t.i for t in subject.subtree) + 1
    before = [t.text for t in rest if t.i < end]
    after = [t.text for t in rest if t.i >= end]
    return " ".join([*before, first.text.lower(), *after])


# -- entity answers ------------------------------------------------------------------------


def _entity(
    asked: Any | None,
    answer: str,
    texts: list[Any],
    titles: Sequence[tuple[str, ...]] = (),
    documents: Sequence[set[str]] = (),
) -> AnswerCheck:
    stating = [t for t in texts if _names(t, answer)]
    if not stating:
        return AnswerCheck("unsupported", f"no supported claim states {answer!r}")
    if asked is None:
        return AnswerCheck("supported", "a supported claim states the answer")
    anchors = _anchors(asked)
    problem = _off_topic(asked, answer, texts, stating, anchors, (titles, documents))
    if problem is not None:
        return AnswerCheck("unsupported", problem)
    role = filled_role(asked, answer, stating, anchors)
    if role is not None:
        return role
    loose = _detached(asked, answer, stating, texts)
    if loose is not None:
        return AnswerCheck("unsupported", loose)
    return AnswerCheck("supported", "a supported claim states the answer in the asked role")


def _off_topic(
    asked: Any,
    answer: str,
    texts: list[Any],
    stating: list[Any],
    anchors: list[str],
    cited: tuple[Sequence[tuple[str, ...]], Sequence[set[str]]] = ((), ()),
) -> str | None:
    """Why the claims do not answer what was asked: the answer repeats the question, is
    of the wrong kind, or the claims leave out a name or relation the question asks about."""
    said = set(_words(answer))
    if any(
        _runs_in(_words(answer), _words(a)) or set(_words(a)) <= said for a in anchors if _words(a)
    ) or _inside_name(answer, stating, anchors):
        return f"the answer {answer!r} repeats a name the question gives"
    kind = _kind_problem(asked, answer, stating)
    if kind is not None:
        return kind
    missing_anchor = [
        a
        for a in anchors
        if not any(_names(t, a) for t in texts)
        and not any(_titled(a, doc, own) for doc, own in zip(texts, cited[0], strict=False))
    ]
    if missing_anchor:
        return f"no supported claim names {missing_anchor[0]!r}, which the question asks about"
    relation = _relation_words(asked, anchors)
    said = {w for t in texts for w in _lemmas(t)} | _life_events(answer, stating)
    unsaid = [w for w in relation if not _said(w, said, _INVERSES)]
    subjects = [t.text for t in asked if t.dep_ in ("nsubj", "nsubjpass") and t.pos_ == "NOUN"]
    if _located_at([*anchors, *subjects], texts, _WHERE):  # "where is X found": "X … in Y"
        passive = {t.lemma_.lower() for t in asked if t.tag_ == "VBN" or t.lemma_ in ("lie", "sit")}
        unsaid = [w for w in unsaid if not (w in _LOCATIVE_VERBS and w in passive)]
    # "the city where WILM broadcasts", "the country where the river is": a kind of
    # place, organisation or work is said by naming one of that kind other than the
    # question's own names (not a person's role: "wife", "founder" must be said)
    named = {_bare(a) for a in anchors}
    labels = {e.label_ for t in texts for e in t.ents if _bare(e.text) not in named}
    unsaid = [
        w
        for w in unsaid
        if not (w in HEAD_TYPES and not HEAD_TYPES[w] & {"PERSON"} and HEAD_TYPES[w] & labels)
    ]
    category = answer_kind(asked).category
    if unsaid == [category] and _attribute_of(answer, stating, anchors):
        unsaid = []  # "What is X's occupation?" ← "X is a politician": what X is said to be
    if unsaid:
        return (
            f"the supported claims do not say {', '.join(repr(w) for w in unsaid[:3])}, "
            "which the question asks about"
        )
    return _one_hop(relation, anchors, texts, stating, cited)


def _one_hop(
    relation: list[str],
    anchors: list[str],
    texts: list[Any],
    stating: list[Any],
    cited: tuple[Sequence[tuple[str, ...]], Sequence[set[str]]],
) -> str | None:
    """A claim that says every relation of the question itself must also name what the
    question asks about: "Tom Lenz was born in Ghent" does not say where Vera Dua was
    born, even chained to "Vera Dua met Tom Lenz" (the question asks no hop). "He was
    born in Ghent" names Vera Dua when a claim of the same document names her and no
    other person (the pronoun has no one else to stand for)."""
    titles, documents = cited
    own = {w for t in stating for w in _lemmas(t)}
    if not relation or any(not _said(w, own, _INVERSES) for w in relation):
        return None
    own_titles = [titles[i] for i, t in enumerate(texts) if i < len(titles) and t in stating]
    for anchor in anchors:
        if (
            not any(_names(t, anchor) for t in stating)
            and not any(_titled(anchor, t, own) for t in stating for own in own_titles)
            and not _coreferent(anchor, texts, stating, documents)
        ):
            return (
                f"the claim stating the answer does not name {anchor!r}, which the question "
                "asks about"
            )
    return None


#: verbs that say no more than where something is (a locative preposition says the same)
_LOCATIVE_VERBS = frozenset("find locate situate lie sit base".split())
_PLACES = frozenset({"GPE", "LOC", "FAC", "ORG"})
_LOCATIVE = frozenset("in at on near to from inside within into outside across".split())
#: prepositions that say where something is ("found in", "located at")
_WHERE = frozenset("in at on near inside within".split())


def _located(answer: str, stating: list[Any]) -> bool:
    """Whether a claim gives the answer as a place: the object of "in", "at", "near" …"""
    for doc in stating:
        span = _find(doc, answer)
        if span is not None and span.root.dep_ == "pobj" and span.root.head.lower_ in _LOCATIVE:
            return True
    return False


_WHEN_WORDS = frozenset(
    "day night morning evening year month week century decade season spring summer autumn "
    "winter christmas eve today yesterday tomorrow".split()
)


def _inside_name(answer: str, stating: list[Any], anchors: list[str]) -> bool:
    """Whether the answer is part of the way a claim writes one of the question's names
    ("Mark Thomas" of "Mark Thomas Vande Hei" for "Mark T. Vande Hei")."""
    for doc in stating:
        named = {t.i for a in anchors for span in _spans_of(doc, a) for t in span}
        found = _find(doc, answer)
        if found is not None and named and all(t.i in named for t in found):
            return True
    return False


def _labels(answer: str, stating: list[Any]) -> set[str]:
    """The entity labels the claims stating the answer give its words."""
    return {
        t.ent_type_ for doc in stating if (span := _find(doc, answer)) is not None for t in span
    } - {""}


def _kind_problem(asked: Any, answer: str, stating: list[Any]) -> str | None:
    """Why the answer is not of the kind the question asks for ("where" → not a person,
    "when" → a date or a time, "who" → not a date or a number, "what is X's occupation"
    → not a name, a people, a place or a date)."""
    # the word that asks, not a relative one later ("the country where the river is")
    wh = next((t.lower_ for t in asked if t.lower_ in _WH), None)
    if wh in ("what", "which"):
        return _not_a_thing(asked, answer, stating)
    if wh not in ("who", "whom", "when", "where"):
        return None
    labels = _labels(answer, stating)
    has_number = any(c.isdigit() for c in answer)
    if wh == "where" and not (labels & _PLACES or _located(answer, stating)):
        return f"the question asks where; no supported claim gives {answer!r} as a place"
    if wh == "when" and not (
        has_number or labels & {"DATE", "TIME"} or set(_words(answer)) & _WHEN_WORDS
    ):
        return f"the question asks when; {answer!r} is not a date or a time"
    if wh in ("who", "whom") and labels and labels <= {"DATE", "TIME", "CARDINAL", "MONEY"}:
        return f"the question asks who; {answer!r} is a {sorted(labels)[0].lower()}"
    return None


#: entity labels no plain noun category ("occupation", "genre", "sport") is answered by
_NAMED_LABELS = frozenset(
    "PERSON NORP GPE LOC FAC ORG DATE TIME CARDINAL MONEY PERCENT QUANTITY".split()
)
#: categories a people or a faith answers ("What is X's nationality?": "French")
_PEOPLES = frozenset("nationality citizenship ethnicity religion faith denomination".split())


def _not_a_thing(asked: Any, answer: str, stating: list[Any]) -> str | None:
    """A question asking for a plain noun of a category the entity labels do not cover
    ("occupation", "genre") is not answered by a name, a people, a place or a date."""
    kind = answer_kind(asked)
    category = kind.category
    if category is None:
        return None
    labels = _labels(answer, stating)
    typed = HEAD_TYPES.get(category)
    if typed is not None:
        # "What nationality is the director …?" is not answered by a person's name
        wrong = labels == {"PERSON"} and "PERSON" not in typed
        return f"the question asks for a {category}, not a person" if wrong else None
    if kind.kind != "thing":
        return None
    if category in _PEOPLES:
        labels -= {"NORP", "GPE"}
    if labels and labels <= _NAMED_LABELS:
        return f"the question asks for its {category}; {answer!r} is a name ({sorted(labels)[0]})"
    return None


def _yes_no(asked: Any, yes: bool, texts: list[Any]) -> AnswerCheck | None:
    first = next((t for t in asked if not t.is_punct), None)
    if first is None or first.lower_ not in _AUX:
        return AnswerCheck("unsupported", "the question is not a yes/no question")
    anchors = _anchors(asked)
    words = {t.lower_ for t in asked}
    both = _both(asked, yes, anchors, texts) if len(anchors) >= 2 and "both" in words else None
    if both is not None and not words & {"same", "different"}:
        return both
    if len(anchors) >= 2 and words & {"same", "both", "different"}:
        values = []
        for anchor in anchors[:2]:
            value = _attribute(anchor, texts, asked)
            if value is None:
                return AnswerCheck(
                    "unsupported", f"no supported claim states the value for {anchor!r}"
                )
            values.append(value)
        same = values[0] == values[1]
        expected = same if ("same" in words or "both" in words) else not same
        verdict: Verdict = "supported" if expected == yes else "contradicted"
        return AnswerCheck(
            verdict,
            f"recomputed from the cited values: {anchors[0]} {values[0]!r}, "
            f"{anchors[1]} {values[1]!r} → {'yes' if expected else 'no'}",
        )
    comparative = next((t for t in asked if t.tag_ in ("JJR", "RBR")), None)
    if len(anchors) >= 2 and comparative is not None:
        return _earlier(asked, comparative, yes, anchors, texts)
    return None


def _earlier(
    asked: Any, comparative: Any, yes: bool, anchors: list[str], texts: list[Any]
) -> AnswerCheck:
    """ "Is A older than B?" recomputed from the dates the claims give for the asked
    event (:func:`agents.choices.dated`)."""
    dates = [dated(asked, a, texts) for a in anchors[:2]]
    if dates[0] is None or dates[1] is None:
        return AnswerCheck("unsupported", "the claims do not give both values to compare")
    early = comparative.lower_ in EARLY
    holds = dates[0] < dates[1] if early else dates[0] > dates[1]
    return AnswerCheck(
        "supported" if holds == yes else "contradicted",
        f"recomputed from the cited dates → {'yes' if holds else 'no'}",
    )


def _both(asked: Any, yes: bool, anchors: list[str], texts: list[Any]) -> AnswerCheck | None:
    """ "Are A and B both musicians?": yes when a claim about each says it is one (a
    claim not saying so is no evidence for "no"). None when the question asks for a
    shared value instead ("both from Germany": the places are compared)."""
    named = {w for a in anchors for w in _words(a)}
    wanted = {
        t.lemma_.lower()
        for t in asked
        if t.pos_ in ("NOUN", "ADJ") and not t.is_stop and t.lower_ not in named
    }
    if not wanted or all(country_key(w) for w in wanted):
        return None
    missing = _lacking(anchors[:2], wanted, texts)
    said = " ".join(sorted(wanted))
    if missing:
        return AnswerCheck("unsupported", f"no supported claim says {missing!r} is {said}")
    return AnswerCheck(
        "supported" if yes else "contradicted",
        f"the claims say each of {anchors[0]!r} and {anchors[1]!r} is {said}",
    )


def _attribute(anchor: str, texts: list[Any], asked: Any) -> str | None:
    """The value a claim about ``anchor`` gives for the asked attribute (nationality:
    the country a people or place name stands for; otherwise the attribute noun)."""
    for doc in texts:
        if not _names(doc, anchor):
            continue
        for token in doc:
            country = country_key(token.text)
            if country is not None and not _inside(anchor, token.text):
                return country
        for ent in doc.ents:
            if ent.label_ in ("NORP", "GPE") and not _inside(anchor, ent.text):
                return country_key(ent.text) or normalize_name(ent.text)
    del asked
    return None


def _bare(name: str) -> str:
    return normalize_name(name).removeprefix("the ").strip(" .")


# -- numbers -------------------------------------------------------------------------------


def _asks_number(asked: Any) -> bool:
    return any(
        t.lower_ == "how" and t.i + 1 < len(asked) and asked[t.i + 1].lower_ in ("many", "much")
        for t in asked
    )


def _number(answer: str, texts: list[Any], parsed: Any) -> AnswerCheck:
    given = quantities(parsed)
    if not given:
        return AnswerCheck("unsupported", f"{answer!r} is not a number")
    value = given[0].value
    stated = [q for t in texts for q in quantities(t)]
    if any(abs(q.value - value) < 1e-9 for q in stated):
        return AnswerCheck("supported", "a supported claim states the number")
    for unit in {q.unit for q in stated if not q.year} | {"year"}:
        values = [q.value for q in stated if (q.year if unit == "year" else q.unit == unit)]
        if any(abs(abs(a - b) - value) < 1e-6 * max(1.0, value) for a in values for b in values):
            return AnswerCheck("supported", "recomputed as the difference of two cited values")
        if len(values) > 1 and abs(sum(values) - value) < 1e-6 * max(1.0, value):
            return AnswerCheck("supported", "recomputed as the sum of the cited values")
    return AnswerCheck(
        "unsupported", f"no supported claim states {answer!r} and no cited values give it"
    )


# -- helpers -------------------------------------------------------------------------------

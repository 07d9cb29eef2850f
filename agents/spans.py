"""Answer kinds and answer spans: what a question asks for, and the shortest span of
that kind an evidence sentence states in the asked role.

No model. The question's parse gives its *answer kind* (a person, an organisation, a
place, a date, a number, yes/no, a title, a thing such as an occupation or a genre, or
a description for "why" / "what did … win … for" questions) and its *clues*: the words
that name what it asks about (the relation: "directed", "born", "capital") and the
names it gives (the anchors). Each evidence sentence's parse then offers candidates of
that kind — named entities, numbers and dates, noun phrases, the object of the
question's stranded preposition — and each is scored by

- how well its sentence matches the question (the embedder's similarity, the share of
  relation words and of anchors it states, the rank of its chunk),
- how close it stands to the relation and anchor words in the sentence's dependency
  tree (the object of "directed", the attribute of "is", not a name three clauses away),
- whether it fills the asked role (the subject when the question asks who did it, an
  object or complement otherwise),
- agreement: the same value stated by several sentences adds up.

A candidate that repeats a name of the question is never the answer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.naming import anchors_of, spans_of, words
from agents.question import HEAD_TYPES, stem
from graph import normalize_name

__all__ = [
    "AnswerKind",
    "Candidate",
    "Clues",
    "Kind",
    "answer_kind",
    "clues_of",
    "score_candidates",
    "sentence_views",
]

Kind = Literal[
    "person",
    "organization",
    "place",
    "date",
    "number",
    "yes_no",
    "title",
    "thing",
    "description",
]

_PERSON = frozenset({"PERSON"})
_ORG = frozenset({"ORG"})
_PLACE = frozenset({"GPE", "LOC", "FAC"})
_DATE = frozenset({"DATE", "TIME"})
_NUMBER = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT"})
_TITLE = frozenset({"WORK_OF_ART", "PRODUCT", "EVENT", "LAW"})
_NAMED = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "WORK_OF_ART", "PRODUCT"})
_VALUES = _DATE | _NUMBER | frozenset({"ORDINAL"})
_WH = frozenset("who whom whose what which when where why how".split())
_AUX = frozenset("is was are were do does did can could has have had will would should".split())
# question words that ask rather than say what is asked about
_ASKING = frozenset(
    "name names kind type sort one ones thing things part way also called known "
    "example term".split()
)
_TIME_UNITS = frozenset("second minute hour day week month year decade century season term".split())
_MEASURES = frozenset("many much long old tall far big large high wide deep heavy".split())


@dataclass(frozen=True, slots=True)
class AnswerKind:
    """What kind of answer a question expects.

    Attributes:
        kind: the kind (see :data:`Kind`).
        labels: entity labels a candidate of this kind carries (empty: any span).
        category: the noun naming the asked category ("occupation", "genre", "city"),
            when the question names one.
        preposition: a stranded preposition the answer is the object of ("what did she
            win a Tony for" → "for").
    """

    kind: Kind
    labels: frozenset[str] = frozenset()
    category: str | None = None
    preposition: str | None = None

    @property
    def named(self) -> bool:
        """Whether the answer is a name or value (a short entity span)."""
        return self.kind in ("person", "organization", "place", "date", "number", "title")


_WH_KINDS = {
    "why": AnswerKind("description", preposition="because"),
    "when": AnswerKind("date", _DATE),
    "where": AnswerKind("place", _PLACE | _ORG),
    "who": AnswerKind("person", _PERSON | _ORG),
    "whom": AnswerKind("person", _PERSON | _ORG),
}
# a category's entity labels → the kind it asks for, first match wins
_CATEGORY_KINDS: tuple[tuple[frozenset[str], Kind, frozenset[str]], ...] = (
    (_PERSON, "person", _PERSON),
    (_PLACE, "place", _PLACE),
    (_DATE, "date", _DATE),
    (_ORG, "organization", _ORG | frozenset({"NORP"})),
    (frozenset({"WORK_OF_ART"}), "title", _TITLE | _ORG),
)


def answer_kind(doc: Any) -> AnswerKind:
    """The answer kind of a parsed question."""
    tokens = [t for t in doc if not t.is_space and not t.is_punct]
    if not tokens:
        return AnswerKind("thing")
    if tokens[0].lower_ in _AUX:
        return AnswerKind("yes_no")
    stranded = _stranded_preposition(doc)
    for token in tokens:
        kind = _kind_at(token, doc, stranded)
        if kind is not None:
            return kind
    return AnswerKind("thing")


def _kind_at(token: Any, doc: Any, stranded: str | None) -> AnswerKind | None:
    """The kind a question word asks for (None: the token is not a question word)."""
    low = token.lower_
    if low == "how":
        return _how(doc[token.i + 1].lower_ if token.i + 1 < len(doc) else "", doc)
    if low in ("which", "what", "whose") and token.head.pos_ in ("NOUN", "PROPN"):
        noun = token.head if token.head.i != token.i else None
    elif low in ("what", "which"):
        noun = _asked_noun(token)
    else:
        return _WH_KINDS.get(low)
    if noun is not None:
        return _of_category(noun, stranded)
    if low in _WH_KINDS:
        return _WH_KINDS[low]
    if stranded is not None:
        return AnswerKind("description", preposition=stranded)
    return AnswerKind("thing")


def _how(after: str, doc: Any) -> AnswerKind:
    """What a "how …" question asks for: a count or an amount ("how many/much"), a
    measure that may be a duration ("how long", "how old"), or a description."""
    if after in ("many", "much"):
        # a count or an amount, not a date — unless what is counted is time ("how many
        # years": "seven years" is a duration)
        timed = any(t.lemma_.lower() in _TIME_UNITS for t in doc)
        return AnswerKind("number", _NUMBER | (_DATE if timed else frozenset()))
    if after in _MEASURES or (after in ("long", "old") and _asks_time_span(doc)):
        return AnswerKind("number", _NUMBER | _DATE)
    return AnswerKind("description")


def _of_category(noun: Any, stranded: str | None) -> AnswerKind:
    lemma = noun.lemma_.lower()
    # "the name of the city": the category is what "name" is of
    inner = next(
        (g for c in noun.children if c.dep_ == "prep" for g in c.children if g.dep_ == "pobj"),
        None,
    )
    if lemma in _ASKING and inner is not None:
        return _of_category(inner, stranded)
    labels = HEAD_TYPES.get(lemma)
    if labels is None:
        if stranded is not None and lemma in _ASKING:
            return AnswerKind("description", preposition=stranded)
        return AnswerKind("thing", category=lemma)
    for wanted, kind, accepted in _CATEGORY_KINDS:
        if labels & wanted:
            return AnswerKind(kind, accepted, category=lemma)
    return AnswerKind("thing", labels, category=lemma)


def _asked_noun(wh: Any) -> Any | None:
    """The noun a "what is X's occupation" / "what genre" question asks for."""
    head = wh.head
    if head.lemma_ == "be":
        subjects = [c for c in head.children if c.i != wh.i and c.dep_ in ("nsubj", "attr")]
        for child in subjects:
            if child.pos_ == "NOUN":
                return child
        # "What is Bae Geu-rin's occupation?" parsed as the name with "occupation" in
        # apposition
        for child in subjects:
            for noun in child.children:
                if noun.dep_ == "appos" and noun.pos_ == "NOUN":
                    return noun
    return None


def _stranded_preposition(doc: Any) -> str | None:
    """A preposition with no object ("what did she win a Tony for?")."""
    for token in doc:
        if token.dep_ == "prep" and not any(c.dep_ in ("pobj", "pcomp") for c in token.children):
            after = [t for t in doc[token.i + 1 :] if not t.is_punct]
            if not after:
                return str(token.lower_)
    return None


def _asks_time_span(doc: Any) -> bool:
    return any(t.lemma_ in ("last", "take", "serve", "live", "reign", "run") for t in doc)


@dataclass(frozen=True, slots=True)
class Clues:
    """The words of a question a sentence should state, as lemmas and short stems."""

    relation: frozenset[str]
    category: str | None
    anchors: tuple[str, ...]
    anchor_words: frozenset[str]
    subject_asked: bool
    verb: str | None


def clues_of(doc: Any, names: Sequence[str], category: str | None = None) -> Clues:
    """The relation words and anchor names of a parsed question (``names``: the names
    linked to the graph, in the question's spelling, added to the question's own;
    ``category``: the noun naming the asked kind, which weighs less than a relation)."""
    linked = [n.strip() for n in names if n.strip()]
    anchors = [a for a in dict.fromkeys([*linked, *anchors_of(doc)]) if a.lower() not in _WH]
    anchor_words = frozenset(w for a in anchors for w in words(a))
    relation = set()
    for token in doc:
        if token.is_stop or token.is_punct or token.lower_ in _WH:
            continue
        if token.pos_ not in ("NOUN", "VERB", "ADJ", "ADV", "NUM"):
            continue
        lemma = token.lemma_.lower()
        if lemma in _ASKING or token.lower_ in anchor_words:
            continue
        relation.add(stem(lemma))
    wh = next((t for t in doc if t.lower_ in ("who", "what", "which", "whom")), None)
    asking = wh.head if wh is not None and wh.dep_ == "det" else wh
    subject_asked = asking is not None and asking.dep_ in ("nsubj", "nsubjpass")
    verb = (
        asking.head.lemma_.lower()
        if asking is not None and asking.head.pos_ in ("VERB", "AUX")
        else None
    )
    kind_stem = stem(category) if category else None
    return Clues(
        relation=frozenset(relation - {kind_stem} if kind_stem else relation),
        category=kind_stem,
        anchors=tuple(anchors),
        anchor_words=anchor_words,
        subject_asked=subject_asked,
        verb=verb,
    )


@dataclass(slots=True)
class Candidate:
    """One answer candidate: a span of an evidence sentence."""

    text: str
    key: str
    label: str
    sentence: int  # index into the sentences scored
    start: int  # character offsets in the sentence
    end: int
    score: float
    votes: int = 1
    sentences: list[int] = field(default_factory=list)


def score_candidates(
    question: Any,
    kind: AnswerKind,
    clues: Clues,
    sentences: Sequence[Any],
    weights: Sequence[float],
    *,
    owners: Sequence[int] | None = None,
    favoured: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Candidates of the asked kind from parsed evidence sentences, best first.

    ``weights`` is each sentence's match with the question (0..1, from the embedder,
    the words it shares and its chunk's rank); ``owners`` maps each parse to the
    sentence it is a view of (default: one parse per sentence); ``favoured`` holds
    normalised names a graph fact or an executed plan ties to the question (a bonus,
    not a filter).
    """
    asked = normalize_name(question.text)
    asked_words = set(words(asked))
    best: dict[str, Candidate] = {}
    total: dict[str, float] = defaultdict(float)
    categorized: set[str] = set()
    owner = list(owners) if owners is not None else list(range(len(sentences)))
    for view, (doc, weight) in enumerate(zip(sentences, weights, strict=True)):
        index = owner[view]
        matched = _matched(doc, clues)
        anchored = _anchored(doc, clues)
        seen: set[str] = set()
        for span, label in _spans(doc, kind) + _favoured_spans(doc, kind, favoured):
            key = normalize_name(span.text)
            if not key or key in seen or _repeats(key, asked, asked_words, clues):
                continue
            seen.add(key)
            fit = _fit(label, kind)
            if fit <= 0:
                continue
            if kind.category is not None and _categorized(span, kind.category):
                categorized.add(key)
            value = weight * fit * (0.2 + _nearness(span, matched, anchored))
            value *= _role(span, kind, clues, matched) * (1.5 if key in favoured else 1.0)
            total[key] += value
            _keep(
                best,
                Candidate(
                    span.text,
                    key,
                    label,
                    index,
                    span.start_char - doc[0].idx,
                    span.end_char - doc[0].idx,
                    value,
                    sentences=[index],
                ),
            )
    for key, cand in best.items():
        # the best mention counts whole; other sentences stating it add agreement
        cand.score = cand.score + 0.3 * (total[key] - cand.score)
        if categorized and key not in categorized:
            # a sentence says which things are of the asked category ("Victoria Falls is
            # a waterfall"): the others are not what "the waterfall" asks for
            cand.score *= 0.2
    return sorted(best.values(), key=lambda c: (-c.score, len(c.text), c.key))


def _keep(best: dict[str, Candidate], found: Candidate) -> None:
    """Keep the best-scoring mention of each candidate, counting the others as votes."""
    current = best.get(found.key)
    if current is None:
        best[found.key] = found
        return
    if found.score > current.score:
        found.votes, found.sentences = current.votes + 1, [*current.sentences, found.sentence]
        best[found.key] = found
    else:
        current.votes += 1
        current.sentences.append(found.sentence)


def _repeats(key: str, asked: str, asked_words: set[str], clues: Clues) -> bool:
    """Whether a candidate only repeats the question: one of its names, or only words
    of it ("Poe" or "Edgar Poe" for "Edgar Allan Poe", "Sachiko Kokubu" reordered)."""
    if f" {key} " in f" {asked} ":
        return True
    if any(key == normalize_name(a) or key in normalize_name(a) for a in clues.anchors):
        return True
    said = set(words(key))
    if any(set(w) <= said for w in (words(a) for a in clues.anchors) if w):
        return True  # "Ebenezer Scrooge" for "Scrooge": the question's name, written out
    content = [w for w in words(key) if len(w) > 1]
    return bool(content) and all(w in asked_words or w in clues.anchor_words for w in content)


def _spans(doc: Any, kind: AnswerKind) -> list[tuple[Any, str]]:
    """Candidate spans of a sentence with their labels (entity label, or ``NOUN``)."""
    out: list[tuple[Any, str]] = []
    taken: set[int] = set()
    for ent in doc.ents:
        span = _trim(ent)
        if span is not None and ent.label_ == "DATE":
            span = _with_day(span)
        if span is not None:
            out.append((span, ent.label_))
            taken.update(t.i for t in span)
    if kind.kind in ("thing", "title", "description", "organization"):
        for chunk in doc.noun_chunks:
            span = _trim(chunk)
            if span is None:
                continue
            label = "PROPN" if span.root.pos_ == "PROPN" else "NOUN"
            if not any(t.i in taken for t in span):
                out.append((span, label))
            # "an American film director": the bare head phrase is a candidate too
            bare = _bare_head(span)
            if bare is not None and not any(t.i in taken for t in bare):
                out.append((bare, label))
    if kind.kind == "description":
        out += [(s, "CLAUSE") for s in _clauses(doc, kind)]
    return out


def _favoured_spans(doc: Any, kind: AnswerKind, favoured: frozenset[str]) -> list[tuple[Any, str]]:
    """Proper names a graph fact or the plan ties to the question, where the parser
    typed them as nothing ("Hall, who was the first president …"): candidates of a
    name kind with a loose fit."""
    if not favoured or not kind.named or kind.kind in ("date", "number"):
        return []
    typed = {t.i for e in doc.ents for t in e}
    out = []
    for name in favoured:
        for span in spans_of(doc, name):
            if span.root.pos_ == "PROPN" and not any(t.i in typed for t in span):
                out.append((span, "PROPN"))
    return out


def _with_day(span: Any) -> Any:
    """A date with the day the parser left out of it ("4" of "4 March 1961")."""
    before = span.doc[span.start - 1] if span.start > 0 else None
    if before is not None and before.like_num and before.text.isdigit() and int(before.text) <= 31:
        return span.doc[span.start - 1 : span.end]
    return span


def sentence_views(text: str) -> list[str]:
    """A sentence without its parenthetical asides, and each aside on its own: asides
    often break the parse of the sentence around them, and say things of their own
    ("born 8 May 1950 in Paris")."""
    asides = _ASIDE.findall(text)
    if not asides:
        return [text]
    main = " ".join(_ASIDE.sub(" ", text).split())
    return [main, *(a.strip("() ") for a in asides if len(a) > 4)]


_ASIDE = re.compile(r"\([^()]{2,300}\)")


def _trim(span: Any) -> Any | None:
    """A span without leading determiners, possessives and punctuation."""
    start, end = span.start, span.end
    doc = span.doc
    while start < end and (
        doc[start].is_space
        or doc[start].dep_ in ("det", "poss", "case", "punct", "predet")
        or doc[start].is_punct
        or doc[start].lower_ in ("the", "a", "an", "its", "his", "her", "their")
    ):
        start += 1
    while end > start and (
        doc[end - 1].is_punct or doc[end - 1].is_space or doc[end - 1].dep_ == "case"
    ):
        end -= 1
    if start >= end:
        return None
    trimmed = doc[start:end]
    if all(t.is_stop or t.pos_ == "PRON" for t in trimmed):
        return None
    return trimmed


def _bare_head(span: Any) -> Any | None:
    """The head noun with its compounds ("film director" of "an American film director")."""
    root = span.root
    start = root.i
    while start > span.start and span.doc[start - 1].dep_ == "compound":
        start -= 1
    if start == span.start and root.i == span.end - 1:
        return None
    return span.doc[start : root.i + 1]


def _clauses(doc: Any, kind: AnswerKind) -> list[Any]:
    """Spans a description answer can be: the object of the stranded preposition
    ("for her role in Gigi"), a "because" clause."""
    out = []
    for token in doc:
        if kind.preposition == "because" and token.lower_ in ("because", "due", "since"):
            head = token.head
            span = doc[token.i : head.right_edge.i + 1] if head.i > token.i else None
            if span is None:
                span = doc[token.i : token.right_edge.i + 1]
            if len(span) > 1:
                out.append(span)
        elif kind.preposition and token.lower_ == kind.preposition and token.dep_ == "prep":
            objects = [c for c in token.children if c.dep_ in ("pobj", "pcomp")]
            if objects:
                span = _trim(doc[objects[0].left_edge.i : objects[0].right_edge.i + 1])
                if span is not None and len(span) <= 12:
                    out.append(span)
    return out


def _fit(label: str, kind: AnswerKind) -> float:
    """How well a span's label fits the asked kind (0: not at all)."""
    if kind.kind == "description":
        return float(label == "CLAUSE")
    if kind.labels:
        return 1.0 if label in kind.labels else _LOOSE.get(kind.kind, {}).get(label, 0.0)
    if kind.kind != "thing":
        return 0.5
    if label in _VALUES:
        return 0.15
    if label == "NOUN":
        return 1.0 if kind.category is not None else 0.6
    return 0.7 if kind.category is not None else 0.8


#: fits of untyped phrases and of names typed otherwise where a typed entity is asked
#: for (the parser confuses places, organisations and people; "which company": a
#: proper-noun phrase it left untyped)
_LOOSE: dict[str, dict[str, float]] = {
    "place": {"ORG": 0.5, "PERSON": 0.3, "PROPN": 0.4},
    "person": {"ORG": 0.3, "GPE": 0.2, "PROPN": 0.5},
    "organization": {"PROPN": 0.6, "NOUN": 0.35, "GPE": 0.3, "PERSON": 0.3},
    "thing": {"PROPN": 0.6, "NOUN": 0.35},
    "title": {"PROPN": 0.6, "NOUN": 0.35, "ORG": 0.5, "PERSON": 0.3},
}


def _matched(doc: Any, clues: Clues) -> list[tuple[Any, float]]:
    """Tokens of the sentence that state a relation word of the question (weight 1)."""
    out = []
    for token in doc:
        if token.is_stop or token.is_punct:
            continue
        stems = {stem(token.lemma_.lower()), stem(token.lower_)}
        if stems & clues.relation:
            out.append((token, 1.0))
        elif clues.category in stems:
            out.append((token, 0.4))
    return out


def _anchored(doc: Any, clues: Clues) -> list[Any]:
    """Tokens of the sentence inside a name the question gives (or a pronoun subject
    standing for one, when the sentence names none)."""
    out = [t for t in doc if t.lower_ in clues.anchor_words and not t.is_stop]
    if not out:
        out = [t for t in doc if t.pos_ == "PRON" and t.dep_ in ("nsubj", "nsubjpass", "poss")]
    return out


def _distance(a: Any, b: Any) -> int:
    """Edges between two tokens of one parse."""
    up: dict[int, int] = {}
    node, steps = a, 0
    while True:
        up[node.i] = steps
        if node.head.i == node.i:
            break
        node, steps = node.head, steps + 1
    node, steps = b, 0
    while node.i not in up:
        if node.head.i == node.i:
            return 12
        node, steps = node.head, steps + 1
    return steps + up[node.i]


def _nearness(span: Any, matched: list[tuple[Any, float]], anchored: list[Any]) -> float:
    """How close a span stands to the question's words (0..1.2)."""
    root = span.root
    inside = {t.i for t in span}
    relation = [_distance(root, t) for t, _ in matched if t.i not in inside]
    anchor = [_distance(root, t) for t in anchored if t.i not in inside]
    near = 0.0
    if relation:
        near += 0.8 / (1 + max(0, min(relation) - 1))
    if anchor:
        near += 0.4 / (1 + max(0, min(anchor) - 1))
    return near


def _role(span: Any, kind: AnswerKind, clues: Clues, matched: list[tuple[Any, float]]) -> float:
    """A bonus for a span in the role the question asks about."""
    root = span.root
    dep = root.dep_
    head = root.head
    factor = 1.0
    asked_role = ("nsubj",) if clues.subject_asked else ("dobj", "attr", "oprd")
    if clues.verb is not None and head.lemma_.lower() == clues.verb and dep in asked_role:
        factor *= 1.4
    if dep == "pobj" and head.lower_ == "by" and clues.subject_asked:
        factor *= 1.3  # "directed by X" answers "who directed"
    if kind.kind == "thing" and _predicative(root):
        factor *= 1.6  # "X is an actor", "X, an actor,", "X is a poet and an actor"
    if kind.category is not None:
        lemmas = [t.lemma_.lower() for t in span]
        if kind.category in lemmas and all(t.pos_ != "PROPN" for t in span):
            factor *= 0.5  # "the city": the category word is not the value
    if not matched and dep in ("nsubj", "nsubjpass") and kind.kind not in ("person",):
        factor *= 0.9
    return factor


def _categorized(span: Any, category: str) -> bool:
    """Whether a sentence says a span is one of the asked category: a name that ends in
    the category noun ("Fairfax County", "Sonic the Hedgehog") or one the category noun
    stands next to as its apposition, attribute or head ("the Apalachee, a tribe",
    "Charmed is a drama series", "the Charmed series")."""
    lemmas = [t.lemma_.lower() for t in span]
    if category in lemmas:
        return any(t.pos_ == "PROPN" for t in span)
    return _of_category_word(span, category)


def _of_category_word(span: Any, category: str) -> bool:
    root = span.root
    near = [root.head, *root.children]
    if root.dep_ in ("nsubj", "nsubjpass") and root.head.lemma_ == "be":
        near += [c for c in root.head.children if c.dep_ == "attr"]
    return any(t.lemma_.lower() == category for t in near if not span.start <= t.i < span.end)


def _predicative(token: Any) -> bool:
    """Whether a noun says what something is (a copula's attribute, an apposition, or
    coordinated with one)."""
    while token.dep_ == "conj" and token.head.i != token.i:
        token = token.head
    return token.dep_ in ("attr", "appos") or (
        token.head.dep_ in ("attr", "appos") and token.dep_ == "compound"
    )

"""How a parsed text names things: whole-word names, shortened names ("George Rankin"
for "George James Rankin"), names given by a document's title, and chains of claims
that share a name or a document."""

from __future__ import annotations

from typing import Any

from agents.clauses import identity_path, path_between
from agents.values import country_key
from graph import normalize_name

__all__ = [
    "attribute_of",
    "chained",
    "find",
    "finds",
    "fuller_names",
    "inside",
    "name_root",
    "names",
    "proper_words",
    "runs_in",
    "shortened",
    "spans_of",
    "titled",
    "words",
]


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in normalize_name(text)).split()


def names(doc: Any, name: str) -> bool:
    """Whether a parsed claim names ``name`` as whole words (or as the same country)."""
    wanted = words(name)
    if not wanted:
        return False
    said = words(doc.text)
    n = len(wanted)
    if any(said[i : i + n] == wanted for i in range(len(said) - n + 1)):
        return True
    if n > 1 and any(shortened(wanted, words(f.text)) for f in fuller_names(doc)):
        return True
    country = country_key(name)
    return country is not None and any(country_key(t.text) == country for t in doc)


def inside(name: str, text: str) -> bool:
    return bool(set(words(text)) & set(words(name)))


def find(doc: Any, name: str) -> Any | None:
    """The first span of a parsed text that says ``name`` (whole words)."""
    spans = spans_of(doc, name)
    return spans[0] if spans else None


def finds(doc: Any, name: str) -> list[Any]:
    """The head token of each span of a parsed text that says ``name``."""
    return [span.root for span in spans_of(doc, name)]


def spans_of(doc: Any, name: str) -> list[Any]:
    """The spans of a parsed text that say ``name`` (whole words; a shortened name
    stands for the fuller one the text gives)."""
    wanted = words(name)
    if not wanted:
        return []
    said = [(w, t.i) for t in doc for w in words(t.text)]
    found = []
    for i in range(len(said) - len(wanted) + 1):
        if [w for w, _ in said[i : i + len(wanted)]] == wanted:
            found.append(doc[said[i][1] : said[i + len(wanted) - 1][1] + 1])
    if not found and len(wanted) > 1:
        found = [n for n in fuller_names(doc) if shortened(wanted, words(n.text))]
    return found


def fuller_names(doc: Any) -> list[Any]:
    """The names of a parsed text (entities and proper-noun runs)."""
    found = [e for e in doc.ents if e.label_ in ("PERSON", "ORG", "GPE", "LOC", "FAC")]
    start = None
    for token in [*doc, None]:
        if token is not None and token.pos_ == "PROPN":
            start = token.i if start is None else start
            continue
        if start is not None and token is not None:
            found.append(doc[start : token.i])
        elif start is not None:
            found.append(doc[start:])
        start = None
    return found


def shortened(wanted: list[str], name: list[str]) -> bool:
    """Whether ``wanted`` is ``name`` without some of its words ("George Rankin" of
    "George James Rankin", "Herlyn Espinal" of "Herlyn Iván Espinal Martínez"): the same
    first word, the others in order."""
    if len(name) <= len(wanted) or wanted[0] != name[0]:
        return False
    rest = iter(name[1:])
    return all(w in rest for w in wanted[1:])


def name_root(token: Any) -> Any:
    """The last word of the name a token is part of ("Ai" → "Ogawa" in "Ai Ogawa")."""
    while token.dep_ in ("compound", "flat") and token.head.pos_ == "PROPN":
        token = token.head
    return token


def titled(name: str, doc: Any, titles: tuple[str, ...]) -> bool:
    """Whether a claim speaks of ``name`` in a document titled with it: by a word of the
    name ("Brand was born in Berlin" in "August Brand") or a personal pronoun subject
    ("He was born in Paris" in "Nikolai Kinski")."""
    wanted = words(name)
    if not wanted or not any(runs_in(wanted, words(t)) for t in titles):
        return False
    said = set(words(doc.text))
    if any(w in said for w in wanted if len(w) > 2):
        return True
    return any(
        t.tag_ == "PRP" and t.dep_ in ("nsubj", "nsubjpass") and t.lower_ not in ("i", "we", "you")
        for t in doc
    )


def runs_in(wanted: list[str], words: list[str]) -> bool:
    n = len(wanted)
    return any(words[i : i + n] == wanted for i in range(len(words) - n + 1))


def proper_words(doc: Any) -> set[str]:
    return {t.lower_ for t in doc if t.pos_ == "PROPN" and len(t.text) > 2 and not t.is_stop}


def chained(texts: list[Any], documents: list[set[str]], answer: str) -> list[int]:
    """The claims that form one chain with those stating the answer: linked by a name
    they share or by citing the same document. A claim about something else that
    happens to name the question's words is not evidence for the answer ("EMA … from
    South Dakota" does not answer where Vera Dua was born, even next to a claim naming
    Vera Dua). (Yes/no and choice answers are not chained: each branch is its own.)"""
    stating = [i for i, t in enumerate(texts) if names(t, answer)]
    if not stating or len(texts) == 1:
        return list(range(len(texts)))
    proper = [proper_words(t) for t in texts]
    reached = set(stating)
    todo = list(stating)
    while todo:
        i = todo.pop()
        for j in range(len(texts)):
            if j not in reached and (proper[i] & proper[j] or documents[i] & documents[j]):
                reached.add(j)
                todo.append(j)
    return sorted(reached)


def attribute_of(answer: str, stating: list[Any], anchors: list[str]) -> bool:
    """Whether a claim says a named thing of the question *is* the answer: an
    apposition or copula links them, or the answer is coordinated with what does
    ("X was a soldier and politician")."""
    for doc in stating:
        for span in spans_of(doc, answer):
            head = span.root
            while head.dep_ == "conj" and head.head.i != head.i:
                head = head.head
            if head.pos_ not in ("NOUN", "PROPN", "ADJ"):
                continue
            for target in (name_root(t) for name in anchors for t in finds(doc, name)):
                path = path_between(head, target)
                if path is not None and len(path) <= 4 and identity_path(path):
                    return True
    return False

"""Where a name stands in a sentence: the word it attaches to, and how.

"Metlako Falls is a waterfall on Eagle Creek in Hood River County": *Eagle Creek* is
"on" the waterfall, *Hood River County* is "in" what contains it. Swap the two and every
word and every verb stays, but each name now stands somewhere the cited text never put
it. A claim passes when each of its names stands, somewhere in the cited text, where the
claim puts it — read so that restatements keep their places: a passive's agent is the
active's subject, "X's Y" is "Y of X", an apposition ("Smith, the CEO") and a copula
("Smith is the CEO") give one place, a relative pronoun and the subject of coordinated
or controlled verbs stand for their noun, a list item stands where its list does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Place", "name_places", "place_of"]

#: (relation, word): ("subj", "acquire"), ("in", "county"), ("is", "ceo"), ("of", "ceo")
Place = tuple[str, str]


def _lemma(token: Any) -> str:
    return str(token.lemma_.lower())


def _root(token: Any) -> Any:
    """The head of a name's run ("Eagle" → "Creek")."""
    while token.dep_ in ("compound", "flat") and token.head.pos_ == "PROPN":
        token = token.head
    return token


def _listed(token: Any) -> Any:
    """The first item of the list a token is in (a list item stands where its list does)."""
    while token.dep_ == "conj" and token.head.i != token.i:
        token = token.head
    return token


def place_of(token: Any) -> set[Place]:
    """Where the name whose head is ``token`` stands (every reading of it)."""
    token = _listed(_root(token))
    head = token.head
    dep = token.dep_
    places: set[Place] = set()
    if dep in ("nsubj", "csubj"):
        attribute = [c for c in head.children if c.dep_ in ("attr", "acomp")]
        if _lemma(head) == "be" and attribute:
            places |= {("is", _lemma(a)) for a in attribute}
        places.add(("subj", _lemma(head)))
        places |= {("subj", _lemma(v)) for v in _shared_verbs(head)}
    elif dep in ("nsubjpass", "dobj", "obj"):
        places.add(("obj", _lemma(head)))
        places |= {("obj", _lemma(v)) for v in _shared_verbs(head) if dep == "nsubjpass"}
    elif dep == "pobj":
        places |= _after_preposition(head)
    elif dep == "poss":
        places.add(("of", _lemma(head)))
    elif dep == "appos":
        places.add(("is", _lemma(head)))
    elif dep == "amod" and token.ent_type_ == "NORP":
        places.add(("mod", _lemma(head)))  # "his Dutch allies"
    elif dep == "attr" and _lemma(head) == "be":
        places |= {("is", _lemma(s)) for s in head.children if s.dep_ in ("nsubj", "csubj")}
    # elsewhere (a root, a name used as a modifier, a fragment) the parse gives no place
    # a restatement reliably keeps: nothing is compared
    return places


def _after_preposition(prep: Any) -> set[Place]:
    """The places of a preposition's object: the preposition itself (where it attaches is
    often ambiguous in the parse), "Y of X"/"Y to X" as "X's Y", and a "by" phrase as
    the subject of the verb it belongs to."""
    word = prep.lower_
    places: set[Place] = {(word, "")}
    if word in ("of", "to", "for"):
        places.add(("of", _lemma(prep.head)))
    if word == "by" or prep.dep_ == "agent":
        verb = next((a for a in prep.ancestors if a.pos_ in ("VERB", "AUX")), None)
        if verb is not None:
            places.add(("subj", _lemma(verb)))
    return places


def _shared_verbs(verb: Any) -> list[Any]:
    """Verbs that share ``verb``'s subject: coordinated ones without their own, and the
    verbs it controls ("plans to acquire")."""
    out = []
    for child in verb.children:
        own = any(c.dep_ in ("nsubj", "nsubjpass") for c in child.children)
        if child.dep_ in ("conj", "xcomp") and child.pos_ in ("VERB", "AUX") and not own:
            out.append(child)
            out.extend(_shared_verbs(child))
    return out


def name_places(heads: Iterable[Any]) -> set[Place]:
    """Every place the names headed by ``heads`` stand in a parsed text, with the places
    an apposition or a relative clause gives them."""
    places: set[Place] = set()
    for head in heads:
        root = _root(head)
        places |= place_of(root)
        for child in root.children:
            if child.dep_ == "appos":
                places.add(("is", _lemma(child)))
            if child.dep_ == "acl" and child.tag_ in ("VBN", "VBG"):
                # "Helena Marsh, born in 1961": the object of "bear"; "a firm making X"
                places.add(("obj" if child.tag_ == "VBN" else "subj", _lemma(child)))
            if child.dep_ == "relcl":
                pronoun = next(
                    (
                        c
                        for c in child.children
                        if c.lower_ in ("which", "who", "that") and c.dep_ != "mark"
                    ),
                    None,
                )
                if pronoun is not None:
                    places |= place_of(pronoun)
                if any(c.lower_ == "where" for c in child.children):
                    places.add(("in", ""))  # "Paris, where Jones was born": in Paris
    return places

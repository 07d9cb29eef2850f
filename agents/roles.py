"""Whether an answer fills the role the question asks for.

"Which company did Globex acquire?" asks for the object of "acquire": a claim that
states the answer as its subject ("Initech acquired Globex") contradicts it, and so does
one that writes the verb as a noun with the roles swapped ("Initech's acquisition of
Globex"). "Who is Fred?" asks for what a claim says Fred is, not for his owner
("Scrooge's nephew"). A question with no verb role to fill (or a claim that states the
answer without the asked verb) is left to the other checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agents.choices import AnswerCheck
from agents.clauses import arguments, identity_path, path_between
from agents.naming import attribute_of, find, finds, inside, names, same_stem
from agents.spans import answer_kind

__all__ = ["filled_role"]

_WH_WORDS = ("who", "whom", "what", "which")


def filled_role(
    asked: Any, answer: str, stating: list[Any], anchors: list[str]
) -> AnswerCheck | None:
    """Why the answer does not fill the asked role (None: it does, or no role is asked)."""
    wh = next((t for t in asked if t.lower_ in _WH_WORDS), None)
    if wh is None:
        return None
    if wh.head.pos_ in ("NOUN", "PROPN") and wh.dep_ == "det" and wh.head.head.lemma_ != "be":
        wh = wh.head  # "Which company did Globex acquire?": the phrase fills the role
    if wh.head.pos_ not in ("VERB", "AUX"):
        return None
    verb = wh.head
    if verb.lemma_ == "be":
        return _copula(asked, answer, stating, anchors, verb, wh)
    asked_role = _asked_role(wh, verb)
    main = verb.sent.root
    if verb.lemma_ == "do" and main.i != verb.i and main.pos_ == "VERB":
        # "Which company did Globex acquire?" parsed with the phrase on "did": "did" is
        # do-support, so the phrase is not the subject; the verb is "acquire".
        verb, asked_role = main, "object"
    if asked_role is None:
        return None
    for doc in stating:
        span = find(doc, answer)
        if span is not None:
            found = _filled(doc, span, verb.lemma_, asked_role, answer)
            if found is not None:
                return found
    return None


def _copula(
    asked: Any, answer: str, stating: list[Any], anchors: list[str], verb: Any, wh: Any
) -> AnswerCheck | None:
    subject = _described_noun(verb, wh)
    if subject is None:
        return None
    if subject.pos_ == "PROPN" or subject.ent_type_:
        described = [a for a in anchors if inside(a, subject.text)] or anchors
        checked = _described(answer, stating, described, by_name=True)
    elif subject.lemma_.lower() == answer_kind(asked).category and not any(
        names(doc, subject.lemma_) for doc in stating
    ):
        # "What is X's occupation?": the answer must be what X is said to be
        checked = AnswerCheck(
            "supported" if attribute_of(answer, stating, anchors) else "unsupported",
            f"no supported claim says {', '.join(anchors) or 'it'} is {answer!r}",
        )
    else:
        checked = _described(answer, stating, [subject.lemma_.lower()], by_name=False)
    return None if checked.verdict == "supported" else checked


def _described_noun(verb: Any, wh: Any) -> Any | None:
    """What a "what/who is …" question describes: the copula's subject, or what "the
    name" is of ("What is the name of the actress who …": the actress)."""
    subject = next((c for c in verb.children if c.dep_ in ("nsubj", "attr") and c.i != wh.i), None)
    if subject is not None and subject.lemma_.lower() == "name":
        return next((g for c in subject.children if c.lower_ == "of" for g in c.children), subject)
    return subject


def _asked_role(wh: Any, verb: Any) -> str | None:
    subjects, objects = arguments(verb)
    if wh.dep_ == "nsubjpass" or wh in objects or wh.dep_ in ("dobj", "pobj"):
        return "object"
    if wh in subjects or wh.dep_ == "nsubj":
        return "subject"
    return None


def _filled(doc: Any, span: Any, lemma: str, asked_role: str, answer: str) -> AnswerCheck | None:
    """The contradiction when the claim puts the answer in the other role of the verb,
    or of a noun made from it ("the acquisition of Initech by Globex")."""
    inside_answer = range(span.start, span.end)
    for token, (subj, obj) in _uses(doc, lemma):
        mine, other = (subj, obj) if asked_role == "subject" else (obj, subj)
        if any(t.i in inside_answer for t in mine):
            return None
        if any(t.i in inside_answer for t in other):
            flipped = "object" if asked_role == "subject" else "subject"
            return AnswerCheck(
                "contradicted",
                f"the claim states {answer!r} as the {flipped} of {token.text!r}, "
                f"the question asks for its {asked_role}",
            )
    return None


def _uses(doc: Any, lemma: str) -> Iterator[tuple[Any, tuple[list[Any], list[Any]]]]:
    """Each use of the verb in a claim with its subjects and objects: the verb itself,
    and nouns of its stem ("acquisition", "founder") with their arguments."""
    for token in doc:
        if token.lemma_ == lemma and token.pos_ in ("VERB", "AUX"):
            yield token, arguments(token)
        elif token.pos_ == "NOUN" and same_stem(lemma, token.lemma_.lower()):
            yield token, _nominal_arguments(token)


def _nominal_arguments(noun: Any) -> tuple[list[Any], list[Any]]:
    """The subject and object of a noun made from a verb: "Globex's acquisition of
    Initech", "the acquisition of Initech by Globex", "Globex completed its acquisition
    of Initech" (the possessive pronoun stands for its clause's subject)."""
    subjects: list[Any] = []
    objects: list[Any] = []
    for child in noun.children:
        if child.dep_ == "prep" and child.lower_ == "of":
            found = _with_conjuncts(c for c in child.children if c.dep_ == "pobj")
            objects += found
            # "the acquisition of Globex by Initech", "by" parsed onto "Globex"
            subjects += [
                g for t in found for c in t.children if c.lower_ == "by" for g in c.children
            ]
        elif child.dep_ == "prep" and child.lower_ == "by":
            subjects += _with_conjuncts(c for c in child.children if c.dep_ == "pobj")
        elif child.dep_ == "poss" and child.pos_ == "PRON":
            subjects += _clause_subject(noun)
        elif child.dep_ == "poss":
            subjects += _with_conjuncts([child])
    return subjects, objects


def _clause_subject(token: Any) -> list[Any]:
    """The named subject of the clauses around ``token``: "Initech said that it
    completed its acquisition of Globex" — "its" is Initech, through "it"."""
    head = token.head
    for _ in range(6):
        if head.pos_ in ("VERB", "AUX"):
            found = arguments(head)[0]
            if found and any(t.pos_ != "PRON" for t in found):
                return [t for t in found if t.pos_ != "PRON"]
        if head.head.i == head.i:
            break
        head = head.head
    return []


def _with_conjuncts(tokens: Any) -> list[Any]:
    return [x for t in tokens for x in (t, *t.conjuncts)]


def _described(
    answer: str, stating: list[Any], targets: list[str], *, by_name: bool
) -> AnswerCheck:
    """ "Who is Fred?", "Who was Scrooge's clerk?": the answer must be what the claim says
    the named thing (or the asked noun: "clerk") is — an apposition or a copula links
    them — not its owner ("Scrooge's nephew"), nor a name coordinated with it."""
    said_of = ", ".join(targets)
    for doc in stating:
        span = find(doc, answer)
        if span is None:
            continue
        head = span.root
        if by_name:
            found = [t for name in targets for t in finds(doc, name)]
        else:
            found = [t for t in doc if t.lemma_.lower() in targets or t.lower_ in targets]
        for target in found:
            path = path_between(head, target)
            if path is None or len(path) > 4:
                continue
            if head.dep_ in ("poss", "amod") and len(path) > 1 and head.head.i == path[1].i:
                continue  # the owner: "Scrooge's nephew"
            if identity_path(path):
                return AnswerCheck("supported", f"a supported claim says {answer!r} is {said_of}")
    return AnswerCheck("unsupported", f"no supported claim says {answer!r} is {said_of}")

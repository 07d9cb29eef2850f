"""What a parsed clause says: its arguments, polarity, modality and conditions.

Read off the spaCy dependency parse, in general English (no corpus's vocabulary): the
logical subject and object of a verb (passives made active, relative pronouns resolved,
a pronoun standing for the name before it), whether its clause is negated ("not",
"never", "no longer", "failed to", "no plans to"), the modal words and intentions it is
stated under ("will", "may", "plans to", "denied that"), and the conditions put on it
("if", "unless", "as long as"). :mod:`agents.entailment` compares these between a claim and
the text it cites; :mod:`agents.answer_check` reads the roles an answer fills.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from agents.values import country_key

__all__ = [
    "CONDITION_CUES",
    "CONDITION_MARKS",
    "NEGATORS",
    "OBJECTS",
    "PASSIVE_SUBJECTS",
    "SUBJECTS",
    "arguments",
    "base_forms",
    "clause_text",
    "conditions",
    "governors",
    "hyphenated",
    "identity_path",
    "in_clause",
    "modality",
    "name_runs",
    "negated",
    "negates",
    "own_clause",
    "path_between",
    "phrase",
    "predicates",
    "same_thing",
    "word_key",
]

NEGATORS = frozenset({"not", "n't", "never", "no", "neither", "nobody", "nothing", "none"})
# verbs that negate the clause they govern ("failed to pay" did not pay)
_NEGATING_VERBS = frozenset(
    {"fail", "refuse", "decline", "deny", "reject", "neglect", "cease", "avoid", "forgo"}
)
# verbs under which a clause is intended, expected or reported, not stated as a fact
_MODAL_VERBS = frozenset(
    {
        "plan",
        "intend",
        "expect",
        "aim",
        "hope",
        "seek",
        "try",
        "attempt",
        "want",
        "wish",
        "propose",
        "consider",
        "agree",
        "offer",
        "threaten",
        "prepare",
        "promise",
        "allege",
        "claim",
        "rumor",
        "rumour",
        "deny",
        "doubt",
        "predict",
        "forecast",
        "need",
        "have",
        "go",
    }
)
# nouns under which a clause is intended or reported ("plans to close", "evidence that")
_MODAL_NOUNS = frozenset(
    "plan intention intent hope expectation proposal offer threat attempt bid aim goal "
    "evidence claim report allegation rumour rumor suggestion sign proof belief fear "
    "possibility chance risk".split()
)
_MODALS = {
    "will": "will",
    "shall": "will",
    "'ll": "will",
    "wo": "will",
    "would": "would",
    "'d": "would",
    "may": "may",
    "might": "may",
    "could": "may",
    "can": "can",
    "ca": "can",
    "should": "must",
    "must": "must",
    "ought": "must",
}
_MODAL_ADJECTIVES = frozenset({"likely", "unlikely", "expected", "set", "due", "able", "possible"})
CONDITION_MARKS = frozenset(
    {"if", "unless", "provided", "providing", "assuming", "whether", "lest"}
)
_PRONOUNS = frozenset(
    "he she it they we i you him her them us me his hers its their our who whom which that "
    "this these those one".split()
)
_NAME_LABELS = frozenset(
    "PERSON ORG GPE LOC NORP FAC WORK_OF_ART EVENT PRODUCT LAW LANGUAGE".split()
)
SUBJECTS = frozenset({"nsubj", "csubj"})
PASSIVE_SUBJECTS = frozenset({"nsubjpass", "csubjpass"})
OBJECTS = frozenset({"dobj", "obj", "dative", "oprd"})

_IDENTITY_EDGES = frozenset({"appos", "attr", "nsubj", "nsubjpass", "compound", "acomp"})


def identity_path(path: Sequence[Any]) -> bool:
    """Whether a dependency path links two things as one (an apposition, a copula, a name
    and its title) rather than through a verb, a coordination or a preposition."""
    for here, there in itertools.pairwise(path):
        edge = here if here.head.i == there.i else there
        if edge.dep_ not in _IDENTITY_EDGES:
            return False
        if edge.dep_ in ("nsubj", "nsubjpass", "attr", "acomp") and edge.head.lemma_ != "be":
            return False
    return all(t.pos_ != "VERB" for t in path[1:-1])


def word_key(token: Any) -> str:
    return str(token.text.lower().replace("\u2019", "'"))


def hyphenated(word: str, words: set[str]) -> bool:
    """Whether ``word`` is part of a hyphenated word of the cited text ("British-American")."""
    return any("-" in w and word in w.split("-") for w in words)


def base_forms(token: Any) -> set[str]:
    """The token's lemma and simple base forms of its text ("hoped" → "hope", "hop")."""
    lower = token.text.lower()
    forms = {token.lemma_.lower(), lower}
    for suffix, repl in (("ied", "y"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("ing", "")):
        if lower.endswith(suffix) and len(lower) > len(suffix) + 2:
            forms.add(lower[: -len(suffix)] + repl)
    return forms


def name_runs(docs: Iterable[Any]) -> list[list[str]]:
    """Names in parsed texts: entity spans and runs of proper nouns, as lower-case words."""
    runs: list[list[str]] = []
    for doc in docs:
        covered: set[int] = set()
        for ent in doc.ents:
            if ent.label_ in _NAME_LABELS:
                words = [word_key(t) for t in ent if not t.is_punct and word_key(t) != "'s"]
                if words and words != ["the"]:
                    runs.append(words)
                    covered.update(t.i for t in ent)
        run: list[str] = []
        for token in [*doc, None]:
            if token is not None and token.pos_ == "PROPN" and token.i not in covered:
                run.append(word_key(token))
                continue
            if run:
                runs.append(run)
            run = []
    return runs


def predicates(doc: Any) -> list[Any]:
    """The verbs a claim states (its root and every other clause's verb)."""
    found = []
    for token in doc:
        if token.pos_ == "VERB" and token.dep_ not in ("aux", "auxpass", "amod", "compound"):
            if base_forms(token) & _MODAL_VERBS and any(c.dep_ == "xcomp" for c in token.children):
                continue  # "plans to acquire": checked as the modality of "acquire"
            if base_forms(token) & _NEGATING_VERBS and any(
                c.dep_ in ("xcomp", "ccomp") for c in token.children
            ):
                continue  # "failed to pay": checked as the polarity of "pay"
            found.append(token)
        elif token.lemma_ == "be" and token.dep_ in ("ROOT", "conj", "ccomp", "relcl", "advcl"):
            found.append(token)
    if not found:  # "Shares of X trade on Y" parsed without a verb: its root is the predicate
        found = [t for t in doc if t.dep_ == "ROOT" and t.pos_ in ("NOUN", "VERB", "ADJ")]
    return found


def governors(verb: Any) -> list[Any]:
    """The verbs above ``verb`` through open and clausal complements ("plans to" X)."""
    out = []
    current = verb
    while current.dep_ in ("xcomp", "ccomp", "acl") and current.head.i != current.i:
        if current.dep_ == "acl" and current.head.pos_ != "NOUN":
            break
        current = current.head
        out.append(current)
        if current.pos_ == "NOUN":  # "no plans to close", "no evidence that it sank"
            if current.dep_ in ("dobj", "nsubj", "attr", "pobj") and current.head.pos_ in (
                "VERB",
                "AUX",
            ):
                current = current.head
                out.append(current)
            else:
                break
    return out


def negates(child: Any) -> bool:
    """Whether a dependent of a verb negates its clause."""
    lower = child.text.lower()
    if child.dep_ == "neg" or lower in ("never", "n't", "not"):
        return True
    if child.dep_ in ("nsubj", "nsubjpass") and any(
        t.text.lower() == "neither" for t in child.subtree
    ):
        return True
    if lower == "longer":
        return any(c.text.lower() == "no" for c in child.children)
    if child.dep_ not in ("nsubj", "nsubjpass", "dobj"):
        return False
    return lower in ("nobody", "nothing") or any(
        d.dep_ == "det" and d.text.lower() == "no" for d in child.children
    )


def negated(verb: Any) -> bool:
    """Whether the clause of ``verb`` is negated (an odd number of negations)."""
    count = 0
    for token in [verb, *governors(verb)]:
        count += sum(1 for child in token.children if negates(child))
        if token.i != verb.i and base_forms(token) & _NEGATING_VERBS:
            count += 1
        if token.pos_ == "NOUN" and any(
            c.dep_ == "det" and c.text.lower() == "no" for c in token.children
        ):
            count += 1
    return count % 2 == 1


def modality(verb: Any) -> frozenset[str]:
    """The modal words and intention verbs the clause of ``verb`` is stated under."""
    found = set()
    for token in [verb, *governors(verb)]:
        for child in token.children:
            if child.dep_ in ("aux", "auxpass") and child.text.lower() in _MODALS:
                found.add(_MODALS[child.text.lower()])
        if token.i != verb.i:
            lemma = token.lemma_.lower()
            marked = base_forms(token) & (_MODAL_VERBS | _MODAL_NOUNS)
            if marked:
                found.add(min(marked))
            if lemma == "be" and any(c.text.lower() in _MODAL_ADJECTIVES for c in token.children):
                found.add("likely")
        elif token.dep_ == "xcomp" and token.head.text.lower() in _MODAL_ADJECTIVES:
            found.add("likely")
    if verb.dep_ == "xcomp" and verb.head.text.lower() in _MODAL_ADJECTIVES:
        found.add("likely")
    return frozenset(found)


CONDITION_CUES = re.compile(
    r"\b(if|unless|provided|providing|as long as|in the event|in case|on condition|assuming|"
    r"only when|subject to)\b|^(had|were|should) \w",
    re.IGNORECASE,
)


def conditions(verb: Any) -> frozenset[str]:
    """The conditions a clause is stated under ("if", "unless", "provided that", "as
    long as", "in the event that", an inverted "Had the rains come …")."""
    sentence = str(verb.sent.text).strip()
    found = set()
    seen: dict[str, int] = {}
    if not sentence.endswith("?"):
        for match in CONDITION_CUES.finditer(sentence):
            cue = (match.group(1) or match.group(2)).lower()
            seen[cue] = seen.get(cue, 0) + 1
            # counted: a sentence with two conditions keeps both ("if …; if not, …")
            found.add(cue if seen[cue] == 1 else f"{cue} (again)")
    for token in [verb, *governors(verb)]:
        for child in token.children:
            if child.dep_ == "advcl":
                marks = {c.text.lower() for c in child.children if c.dep_ in ("mark", "advmod")}
                found |= marks & CONDITION_MARKS
            if child.dep_ == "prep" and child.text.lower() == "subject":
                found.add("subject to")
    return frozenset(found)


def arguments(verb: Any) -> tuple[list[Any], list[Any]]:
    """The logical subject and object of a verb (passives made active; relative
    pronouns resolved to the noun they describe; subjects of "plans to X" and of
    coordinated verbs inherited)."""
    subjects: list[Any] = []
    objects: list[Any] = []
    for child in verb.children:
        if child.dep_ in SUBJECTS:
            subjects.append(child)
        elif child.dep_ == "agent":
            subjects.extend(c for c in child.children if c.dep_ == "pobj")
        elif child.dep_ in PASSIVE_SUBJECTS or child.dep_ in OBJECTS:
            objects.append(child)
    if not subjects and verb.dep_ in ("xcomp", "conj") and verb.head.pos_ in ("VERB", "AUX"):
        around = list(verb.head.children)
        # "estimates the area to have" / "the area is estimated to have": the subject of
        # "have" is the object of "estimates"; "plans to acquire": the subject of "plans"
        raised = [c for c in around if c.dep_ in ("dobj", *PASSIVE_SUBJECTS)]
        if verb.dep_ == "xcomp" and raised:
            subjects = raised
        else:
            subjects = [c for c in around if c.dep_ in SUBJECTS]
    if verb.dep_ == "acl" and verb.tag_ == "VBN" and not objects:
        objects = [verb.head]  # "the company founded by Smith"
    return _resolved(verb, subjects), _resolved(verb, objects)


def _resolved(verb: Any, tokens: list[Any]) -> list[Any]:
    """Arguments with relative pronouns replaced by their noun, and their conjuncts."""
    out = []
    for token in tokens:
        relative = token.text.lower() in ("which", "who", "that", "whom") and verb.dep_ == "relcl"
        noun = verb.head if relative else token
        out.append(noun)
        out.extend(c for c in noun.children if c.dep_ == "conj")
    return out


def _words(token: Any) -> set[str]:
    """The name words of an argument: its compound/flat name run, or its head noun."""
    parts = [t for t in token.subtree if t.dep_ in ("compound", "flat") and t.head.i == token.i]
    words = {word_key(t) for t in [*parts, token] if not t.is_punct}
    if token.pos_ != "PROPN" and not token.ent_type_:
        return {token.lemma_.lower()}
    return words - {"the", "'s"}


_CLAUSES = frozenset({"relcl", "ccomp", "advcl", "conj", "parataxis", "csubj"})


def own_clause(verb: Any) -> set[int]:
    """The token ids of ``verb``'s own clause: its subtree without the clauses inside it
    that have verbs of their own (relative, complement, adverbial, coordinated)."""
    own: set[int] = set()
    stack = [verb]
    while stack:
        token = stack.pop()
        own.add(token.i)
        for child in token.children:
            if child.dep_ in _CLAUSES and child.pos_ in ("VERB", "AUX"):
                continue
            stack.append(child)
    return own


def in_clause(arg: Any, verb: Any) -> bool:
    """Whether a thing the claim names is attached to ``verb``'s own clause (not to a
    clause inside it with a subject of its own)."""
    if arg.pos_ not in ("NOUN", "PROPN", "NUM"):
        return False
    own = [verb]
    while own:
        token = own.pop()
        for child in token.children:
            if child.dep_ in SUBJECTS | PASSIVE_SUBJECTS | OBJECTS or child.dep_ in (
                "relcl",
                "ccomp",
                "advcl",
                "conj",
            ):
                continue
            if same_thing(arg, child):
                return True
            own.append(child)
    return False


def _antecedent(pronoun: Any) -> Any | None:
    """The name a personal pronoun most likely stands for: the last name before it in
    its sentence or the one before (``None`` when the text gives none)."""
    lower = pronoun.text.lower()
    if lower not in ("he", "she", "him", "her", "his", "it", "its", "they", "them", "their"):
        return None
    start = pronoun.sent.start
    previous = [s for s in pronoun.doc.sents if s.end <= start]
    if previous:
        start = previous[-1].start
    people = lower in ("he", "she", "him", "her", "his")
    for token in reversed(pronoun.doc[start : pronoun.i]):
        if token.pos_ != "PROPN" or token.dep_ == "compound":
            continue
        label = token.ent_type_
        if people and label in ("GPE", "LOC", "ORG", "FAC", "DATE"):
            continue
        return token
    return None


def same_thing(a: Any, b: Any) -> bool:
    """Whether two argument tokens stand for the same thing (a pronoun stands for the
    name before it, or for any name when the text gives none)."""
    if a is None or b is None:
        return False
    for pronoun, other in ((b, a), (a, b)):
        if pronoun.pos_ == "PRON" and other.pos_ != "PRON":
            named = _antecedent(pronoun)
            return named is None or same_thing(other, named)
    if a.text.lower() in _PRONOUNS or b.text.lower() in _PRONOUNS:
        return bool(a.pos_ == "PRON" or b.pos_ == "PRON" or a.text.lower() == b.text.lower())
    mine, theirs = _words(a), _words(b)
    if not mine or not theirs:
        return False
    if mine <= theirs or theirs <= mine:
        return True
    country = country_key(a.text)
    return country is not None and country == country_key(b.text)


def phrase(token: Any) -> str:
    parts = [t for t in token.subtree if t.dep_ in ("compound", "flat", "det", "poss", "amod")]
    tokens = sorted([*(p for p in parts if p.head.i == token.i), token], key=lambda t: t.i)
    return " ".join(str(t.text) for t in tokens)


def clause_text(token: Any) -> str:
    sentence = str(token.sent.text).strip()
    return sentence if len(sentence) <= 160 else sentence[:157] + "…"


def path_between(a: Any, b: Any) -> list[Any] | None:
    """The tokens on the dependency path from ``a`` to ``b`` (both included)."""
    if a.doc is not b.doc:
        return None
    up_a = [a, *a.ancestors]
    up_b = [b, *b.ancestors]
    ids_b = {t.i: n for n, t in enumerate(up_b)}
    for n, token in enumerate(up_a):
        if token.i in ids_b:
            return up_a[: n + 1] + list(reversed(up_b[: ids_b[token.i]]))
    return None

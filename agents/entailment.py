"""Whether cited text states a claim, read from the parse of both (no model).

A claim is entailed when every check below passes; the first that fails gives the
verdict and a reason a person can read:

- **names**: every name the claim states resolves to a name in the cited text ("Scrooge"
  to "Ebenezer Scrooge", "American" to "America"), not merely shares a word with one;
- **values**: every number, amount, percentage and date the claim states is one the cited
  text states, in the same unit;
- **words**: every noun and adjective of the claim is in the cited text;
- **direction**: a direction word (rose/fell, before/after, more/fewer, higher/lower …)
  is not flipped;
- **predicates**: each verb of the claim is a verb of the cited text with the same
  arguments in the same roles (passives read as actives: "Globex was acquired by Acme"
  is "Acme acquired Globex"), the same polarity ("not", "never", "no longer", "failed
  to", "denied"), the same modality ("plans to", "may", "will") and the conditions the
  cited text puts on it ("if", "unless"). A copula ("X is the CEO of Acme") is stated by
  a copula or an apposition ("X, the CEO of Acme, …") that links the same two things.

A quote is checked like any other claim, so a cut that drops a negation or a condition
is caught. Polarity flips, swapped roles and flipped directions are ``contradicted``;
anything else that fails is ``unsupported``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from agents.values import country_key, quantities, same_quantity
from extractors import SpacyEntityExtractor
from graph.provenance import Verdict

__all__ = ["Entailment", "Judgement", "arguments", "identity_path", "path_between"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """A claim's verdict against the cited text, and why."""

    verdict: Verdict
    reason: str


_NEGATORS = frozenset({"not", "n't", "never", "no", "neither", "nobody", "nothing", "none"})
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
_CONDITIONS = frozenset({"if", "unless", "provided", "providing", "assuming", "whether", "lest"})
_PRONOUNS = frozenset(
    "he she it they we i you him her them us me his hers its their our who whom which that "
    "this these those one".split()
)
_DIRECTIONS: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(a.split()), frozenset(b.split()))
    for a, b in (
        (
            "rise rose risen increase grow gain climb jump surge soar up",
            "fall fell fallen decrease decline shrink drop slump plunge sink lose loss down",
        ),
        ("before prior earlier early first previous", "after later late last subsequent"),
        ("more most many much", "fewer few less least little"),
        ("high higher highest", "low lower lowest"),
        ("large larger largest big bigger biggest", "small smaller smallest"),
        ("old older oldest elder eldest", "young younger youngest"),
        ("above over exceed", "below under"),
        ("profit surplus", "loss deficit"),
        ("win won victory", "lose lost defeat"),
        ("improve strengthen", "worsen weaken"),
        ("approve accept", "reject refuse"),
        ("hire appoint", "fire dismiss"),
        ("open", "close"),
        ("buy purchase acquire", "sell divest"),
        ("north northern", "south southern"),
        ("east eastern", "west western"),
        ("maximum", "minimum"),
        ("best", "worst"),
        ("true", "false"),
        ("legal", "illegal"),
    )
)
_NAME_LABELS = frozenset(
    "PERSON ORG GPE LOC NORP FAC WORK_OF_ART EVENT PRODUCT LAW LANGUAGE".split()
)
_CONTENT_POS = frozenset({"NOUN", "ADJ"})
_SUBJECTS = frozenset({"nsubj", "csubj"})
_PASSIVE_SUBJECTS = frozenset({"nsubjpass", "csubjpass"})
_OBJECTS = frozenset({"dobj", "obj", "dative", "oprd"})


class Entailment:
    """Judges claims against cited text with the spaCy parse (see the module doc)."""

    def __init__(self, extractor: SpacyEntityExtractor) -> None:
        self._extractor = extractor
        self._parse = lru_cache(maxsize=2048)(self._extractor.parse)

    def judge(self, claim: str, cited: Sequence[str], names: Iterable[str] = ()) -> Judgement:
        """Whether ``cited`` (the cited spans' texts) states ``claim``.

        ``names``: further names the citation stands for (the cited graph facts' ends).
        """
        text = " ".join(claim.split())
        if not text:
            return Judgement("unsupported", "the claim is empty")
        doc = self._parse(text)
        texts = [" ".join(c.split()) for c in cited if c.strip()]
        if not texts:
            return Judgement("unsupported", "the claim cites no text")
        judged = _Judge(doc, [self._parse(t) for t in texts], tuple(names)).run()
        plain = [_without_asides(t) for t in texts]
        if judged.verdict == "unsupported" and plain != texts:
            # an aside in parentheses can break the parse of the sentence around it; read
            # without it (asides that negate or set a condition are kept)
            again = _Judge(doc, [self._parse(t) for t in plain], tuple(names)).run()
            if again.verdict == "supported":
                return again
        return judged


_ASIDE = re.compile(r"\s*\(([^()]*)\)")


def _without_asides(text: str) -> str:
    """The text without parenthesised asides that neither negate nor set a condition."""

    def drop(match: re.Match[str]) -> str:
        inside = match.group(1).lower().split()
        keep = set(inside) & (_NEGATORS | _CONDITIONS) or _CONDITION_CUES.search(match.group(1))
        return match.group(0) if keep else ""

    return _ASIDE.sub(drop, text)


class _Judge:
    def __init__(self, claim: Any, sources: list[Any], names: tuple[str, ...]) -> None:
        self.claim = claim
        self.sources = sources
        self.tokens = [t for s in sources for t in s]
        self.words = {_key(t) for t in self.tokens} | {t.lemma_.lower() for t in self.tokens}
        self.source_names = [*_name_runs(sources), *(n.lower().split() for n in names)]
        self.source_text = " ".join(_key(t) for t in self.tokens)

    def run(self) -> Judgement:
        for check in (
            self._names,
            self._values,
            self._direction,
            self._content,
            self._predicates,
            self._whole_sentence,
        ):
            judged = check()
            if judged is not None:
                return judged
        return Judgement("supported", "the cited text states it")

    # -- names ---------------------------------------------------------------------------

    def _names(self) -> Judgement | None:
        for run in _name_runs([self.claim]):
            if not self._named(run):
                return Judgement(
                    "unsupported",
                    f"the claim names {' '.join(run).title()!r}, which the cited text does not",
                )
        return None

    def _named(self, run: list[str]) -> bool:
        words = [w for w in run if w not in {"the", "of", "'s", "and"}]
        if not words:
            return True
        country = country_key(" ".join(run))
        if country is not None and any(
            country_key(" ".join(n)) == country for n in self.source_names
        ):
            return True
        wanted = set(words)
        if any(wanted <= set(n) for n in self.source_names):
            return True
        if len(words) == 1 and (words[0] in self.words or _hyphenated(words[0], self.words)):
            return True
        return f" {' '.join(run)} " in f" {self.source_text} "

    # -- values --------------------------------------------------------------------------

    def _values(self) -> Judgement | None:
        stated = [q for s in self.sources for q in quantities(s)]
        for value in quantities(self.claim):
            if any(same_quantity(value, s) for s in stated):
                continue
            same = [s for s in stated if abs(s.value - value.value) < 1e-9]
            if same:
                return Judgement(
                    "unsupported",
                    f"the claim states {value.text!r}; the cited text states "
                    f"{same[0].text!r} in another unit",
                )
            kind = "year" if value.year else "value"
            return Judgement(
                "unsupported",
                f"the claim states the {kind} {value.text!r}, which the cited text does not",
            )
        return None

    # -- direction words ------------------------------------------------------------------

    def _direction(self) -> Judgement | None:
        said = {_key(t) for t in self.claim} | {t.lemma_.lower() for t in self.claim}
        for token in self.claim:
            word, lemma = token.text.lower(), token.lemma_.lower()
            if word in self.words or lemma in self.words:
                continue
            for ups, downs in _DIRECTIONS:
                for mine, other in ((ups, downs), (downs, ups)):
                    if word not in mine and lemma not in mine:
                        continue
                    flipped = next(
                        (
                            t.text
                            for t in self.tokens
                            if (_key(t) in other or t.lemma_.lower() in other)
                            and _key(t) not in said
                        ),
                        None,
                    )
                    if flipped is not None:
                        return Judgement(
                            "contradicted",
                            f"the claim says {token.text!r} where the cited text says {flipped!r}",
                        )
        return None

    # -- content words ---------------------------------------------------------------------

    def _content(self) -> Judgement | None:
        missing = [
            t.text
            for t in self.claim
            if t.pos_ in _CONTENT_POS
            and not t.is_stop
            and _key(t) not in self.words
            and t.lemma_.lower() not in self.words
            and not _known_name(t, self)
        ]
        if missing:
            said = ", ".join(repr(m) for m in missing[:3])
            return Judgement("unsupported", f"the cited text does not say {said}")
        return None

    # -- predicates ------------------------------------------------------------------------

    def _predicates(self) -> Judgement | None:
        if not any(t.pos_ in ("VERB", "AUX") for t in self.claim):
            judged = self._sentence_polarity()
            if judged is not None:
                return judged
        for verb in _predicates(self.claim):
            judged = self._predicate(verb)
            if judged is not None:
                return judged
        for token in self.claim:
            if token.dep_ == "appos" or (token.dep_ == "attr" and token.head.lemma_ == "be"):
                judged = self._link(token)
                if judged is not None:
                    return judged
        return None

    def _whole_sentence(self) -> Judgement | None:
        """A claim that restates a whole cited sentence keeps its number of negations
        (one inside a subordinate clause the parse did not align: "so they do not clash")."""
        words = {t.lemma_.lower() for t in self.claim if t.is_alpha and not t.is_stop}
        for sentence in (s for doc in self.sources for s in doc.sents):
            theirs = {t.lemma_.lower() for t in sentence if t.is_alpha and not t.is_stop}
            if not theirs or len(words & theirs) / len(theirs) < 0.9:
                continue
            negations = sum(1 for t in sentence if t.lower_ in _NEGATORS)
            if negations % 2 != sum(1 for t in self.claim if t.lower_ in _NEGATORS) % 2:
                return Judgement(
                    "contradicted",
                    f"the cited sentence has another number of negations: "
                    f"{str(sentence.text).strip()!r}",
                )
        return None

    def _sentence_polarity(self) -> Judgement | None:
        """For a claim parsed without a verb: its negations against those of the cited
        sentence that shares most of its words."""
        words = {t.lemma_.lower() for t in self.claim if t.is_alpha and not t.is_stop}
        best = max(
            (s for doc in self.sources for s in doc.sents),
            key=lambda s: len(words & {t.lemma_.lower() for t in s}),
        )
        theirs = sum(1 for t in best if t.lower_ in _NEGATORS)
        mine = sum(1 for t in self.claim if t.lower_ in _NEGATORS)
        if theirs % 2 != mine % 2:
            return Judgement(
                "contradicted", f"the cited text says the opposite: {str(best.text).strip()!r}"
            )
        return None

    def _predicate(self, verb: Any) -> Judgement | None:
        lemma = verb.lemma_.lower()
        if lemma == "be" and any(c.dep_ in ("attr", "acomp") for c in verb.children):
            return self._copula(verb)
        candidates = [
            t for t in self.tokens if t.lemma_.lower() == lemma and t.pos_ in ("VERB", "AUX")
        ]
        if not candidates:
            candidates = [t for t in self.tokens if t.lemma_.lower() == lemma]
        if not candidates:
            return Judgement("unsupported", f"the cited text does not say {verb.text!r}")
        failures = [self._compare(verb, c) for c in candidates]
        if any(f is None for f in failures):
            return None
        found = [f for f in failures if f is not None]
        found.sort(key=lambda j: j.verdict != "contradicted")
        return found[0]

    def _compare(self, mine: Any, theirs: Any) -> Judgement | None:
        swapped = self._roles(mine, theirs)
        if swapped is not None:
            return swapped
        if _negated(mine) != _negated(theirs):
            said = "does not state" if _negated(mine) else "negates"
            return Judgement(
                "contradicted",
                f"the cited text {said} {theirs.lemma_!r}: {_clause(theirs)!r}",
            )
        if _modality(mine) != _modality(theirs):
            return Judgement(
                "unsupported",
                f"the cited text states {theirs.lemma_!r} with another modality: "
                f"{_clause(theirs)!r}",
            )
        missing = _conditions(theirs) - _conditions(mine)
        if missing:
            return Judgement(
                "unsupported",
                f"the cited text states it only under a condition ({sorted(missing)[0]!r}): "
                f"{_clause(theirs)!r}",
            )
        return self._attachments(mine, theirs)

    def _roles(self, mine: Any, theirs: Any) -> Judgement | None:
        my_subj, my_obj = arguments(mine)
        their_subj, their_obj = arguments(theirs)
        for mine_args, theirs_args, other_args, role in (
            (my_subj, their_subj, their_obj, "subject"),
            (my_obj, their_obj, their_subj, "object"),
        ):
            for arg in mine_args:
                if any(_same(arg, t) for t in theirs_args):
                    continue
                if any(_same(arg, t) for t in other_args) and not any(
                    _same(t, arg) for t in theirs_args if t.pos_ != "PRON"
                ):
                    return Judgement(
                        "contradicted",
                        f"roles are swapped: in the cited text {_phrase(arg)!r} is not the "
                        f"{role} of {theirs.lemma_!r}: {_clause(theirs)!r}",
                    )
                if _in_clause(arg, theirs):
                    continue  # attached elsewhere in the same clause ("every Christmas Eve")
                if not theirs_args:
                    return Judgement(
                        "unsupported",
                        f"the cited text does not say {_phrase(arg)!r} is the {role} of "
                        f"{theirs.lemma_!r}",
                    )
                return Judgement(
                    "unsupported",
                    f"in the cited text the {role} of {theirs.lemma_!r} is "
                    f"{_phrase(theirs_args[0])!r}, not {_phrase(arg)!r}",
                )
        return None

    def _attachments(self, mine: Any, theirs: Any) -> Judgement | None:
        """Names and numbers the claim attaches to its verb ("born in Paris", "in 2024")
        are attached to the cited verb too (or to what it describes)."""
        scope = _own_clause(theirs)
        if theirs.dep_ in ("relcl", "acl"):
            head = theirs.head
            scope |= {head.i} | {c.i for c in head.children if c.dep_ in ("compound", "flat")}
        doc = theirs.doc
        for prep in (c for c in mine.children if c.dep_ in ("prep", "agent", "npadvmod")):
            for obj in (c for c in prep.subtree if c.dep_ in ("pobj", "npadvmod") or c is prep):
                if not (obj.pos_ in ("PROPN", "NUM") or obj.ent_type_):
                    continue
                if not any(_same(obj, doc[i]) for i in scope):
                    return Judgement(
                        "unsupported",
                        f"the cited text does not connect {_phrase(obj)!r} to "
                        f"{theirs.lemma_!r}: {_clause(theirs)!r}",
                    )
        return None

    def _copula(self, verb: Any) -> Judgement | None:
        subjects = [c for c in verb.children if c.dep_ in _SUBJECTS]
        attributes = [c for c in verb.children if c.dep_ in ("attr", "acomp")]
        for attribute in attributes:
            judged = self._linked(subjects, attribute, _negated(verb), verb)
            if judged is not None:
                return judged
        return None

    def _link(self, token: Any) -> Judgement | None:
        if token.dep_ == "appos":
            return self._linked([token.head], token, negated=False, verb=None)
        return None

    def _linked(
        self, subjects: list[Any], attribute: Any, negated: bool, verb: Any | None
    ) -> Judgement | None:
        """Whether the cited text links ``subjects`` to ``attribute`` (copula/apposition)."""
        heads = [
            t
            for t in self.tokens
            if t.lemma_.lower() == attribute.lemma_.lower() or _key(t) == _key(attribute)
        ]
        if not heads:
            return Judgement("unsupported", f"the cited text does not say {attribute.text!r}")
        best: Judgement | None = None
        for head in heads:
            for subject in subjects or [None]:
                targets = (
                    [t for t in head.doc if _same(subject, t)] if subject is not None else [head]
                )
                for target in targets:
                    path = path_between(head, target)
                    if path is None or len(path) > 4 or not identity_path(path):
                        continue
                    be = next((t for t in path if t.lemma_ == "be"), None)
                    if be is None and head.dep_ in ("attr", "acomp"):
                        be = head.head
                    their_negated = _negated(be) if be is not None else _negated(head)
                    if their_negated != negated:
                        best = Judgement(
                            "contradicted",
                            f"the cited text says the opposite: {_clause(head)!r}",
                        )
                        continue
                    return self._qualified(attribute, head)
        if best is not None:
            return best
        about = _phrase(subjects[0]) if subjects else "it"
        return Judgement(
            "unsupported",
            f"the cited text does not say {about!r} is {_phrase(attribute)!r}",
        )

    def _qualified(self, attribute: Any, head: Any) -> Judgement | None:
        """A copula's attribute keeps what qualifies it in the cited text: the names its
        prepositions attach ("a township in Dodge County") and the sentence's conditions."""
        missing = _conditions(head) - _conditions(attribute.head)
        if missing:
            return Judgement(
                "unsupported",
                f"the cited text states it only under a condition ({sorted(missing)[0]!r}): "
                f"{_clause(head)!r}",
            )
        scope = _own_clause(head)
        for obj in (attribute.doc[i] for i in sorted(_own_clause(attribute))):
            if obj.dep_ != "pobj" or not (obj.pos_ in ("PROPN", "NUM") or obj.ent_type_):
                continue
            if not any(_same(obj, head.doc[i]) for i in scope):
                return Judgement(
                    "unsupported",
                    f"the cited text does not connect {_phrase(obj)!r} to "
                    f"{_phrase(head)!r}: {_clause(head)!r}",
                )
        return None


# -- parse helpers ------------------------------------------------------------------------

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


def _key(token: Any) -> str:
    return str(token.text.lower().replace("\u2019", "'"))


def _hyphenated(word: str, words: set[str]) -> bool:
    """Whether ``word`` is part of a hyphenated word of the cited text ("British-American")."""
    return any("-" in w and word in w.split("-") for w in words)


def _base(token: Any) -> set[str]:
    """The token's lemma and simple base forms of its text ("hoped" → "hope", "hop")."""
    lower = token.text.lower()
    forms = {token.lemma_.lower(), lower}
    for suffix, repl in (("ied", "y"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("ing", "")):
        if lower.endswith(suffix) and len(lower) > len(suffix) + 2:
            forms.add(lower[: -len(suffix)] + repl)
    return forms


def _known_name(token: Any, judge: _Judge) -> bool:
    country = country_key(token.text)
    return country is not None and any(
        country_key(" ".join(n)) == country for n in judge.source_names
    )


def _name_runs(docs: Iterable[Any]) -> list[list[str]]:
    """Names in parsed texts: entity spans and runs of proper nouns, as lower-case words."""
    runs: list[list[str]] = []
    for doc in docs:
        covered: set[int] = set()
        for ent in doc.ents:
            if ent.label_ in _NAME_LABELS:
                words = [_key(t) for t in ent if not t.is_punct and _key(t) != "'s"]
                if words and words != ["the"]:
                    runs.append(words)
                    covered.update(t.i for t in ent)
        run: list[str] = []
        for token in [*doc, None]:
            if token is not None and token.pos_ == "PROPN" and token.i not in covered:
                run.append(_key(token))
                continue
            if run:
                runs.append(run)
            run = []
    return runs


def _predicates(doc: Any) -> list[Any]:
    """The verbs a claim states (its root and every other clause's verb)."""
    found = []
    for token in doc:
        if token.pos_ == "VERB" and token.dep_ not in ("aux", "auxpass", "amod", "compound"):
            if _base(token) & _MODAL_VERBS and any(c.dep_ == "xcomp" for c in token.children):
                continue  # "plans to acquire": checked as the modality of "acquire"
            if _base(token) & _NEGATING_VERBS and any(
                c.dep_ in ("xcomp", "ccomp") for c in token.children
            ):
                continue  # "failed to pay": checked as the polarity of "pay"
            found.append(token)
        elif token.lemma_ == "be" and token.dep_ in ("ROOT", "conj", "ccomp", "relcl", "advcl"):
            found.append(token)
    if not found:  # "Shares of X trade on Y" parsed without a verb: its root is the predicate
        found = [t for t in doc if t.dep_ == "ROOT" and t.pos_ in ("NOUN", "VERB", "ADJ")]
    return found


def _governors(verb: Any) -> list[Any]:
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


def _negates(child: Any) -> bool:
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


def _negated(verb: Any) -> bool:
    """Whether the clause of ``verb`` is negated (an odd number of negations)."""
    count = 0
    for token in [verb, *_governors(verb)]:
        count += sum(1 for child in token.children if _negates(child))
        if token.i != verb.i and _base(token) & _NEGATING_VERBS:
            count += 1
        if token.pos_ == "NOUN" and any(
            c.dep_ == "det" and c.text.lower() == "no" for c in token.children
        ):
            count += 1
    return count % 2 == 1


def _modality(verb: Any) -> frozenset[str]:
    """The modal words and intention verbs the clause of ``verb`` is stated under."""
    found = set()
    for token in [verb, *_governors(verb)]:
        for child in token.children:
            if child.dep_ in ("aux", "auxpass") and child.text.lower() in _MODALS:
                found.add(_MODALS[child.text.lower()])
        if token.i != verb.i:
            lemma = token.lemma_.lower()
            marked = _base(token) & (_MODAL_VERBS | _MODAL_NOUNS)
            if marked:
                found.add(min(marked))
            if lemma == "be" and any(c.text.lower() in _MODAL_ADJECTIVES for c in token.children):
                found.add("likely")
        elif token.dep_ == "xcomp" and token.head.text.lower() in _MODAL_ADJECTIVES:
            found.add("likely")
    if verb.dep_ == "xcomp" and verb.head.text.lower() in _MODAL_ADJECTIVES:
        found.add("likely")
    return frozenset(found)


_CONDITION_CUES = re.compile(
    r"\b(if|unless|provided|providing|as long as|in the event|in case|on condition|assuming|"
    r"only when|subject to)\b|^(had|were|should) \w",
    re.IGNORECASE,
)


def _conditions(verb: Any) -> frozenset[str]:
    """The conditions a clause is stated under ("if", "unless", "provided that", "as
    long as", "in the event that", an inverted "Had the rains come …")."""
    sentence = str(verb.sent.text).strip()
    found = set()
    if not sentence.endswith("?"):
        for match in _CONDITION_CUES.finditer(sentence):
            found.add((match.group(1) or match.group(2)).lower())
    for token in [verb, *_governors(verb)]:
        for child in token.children:
            if child.dep_ == "advcl":
                marks = {c.text.lower() for c in child.children if c.dep_ in ("mark", "advmod")}
                found |= marks & _CONDITIONS
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
        if child.dep_ in _SUBJECTS:
            subjects.append(child)
        elif child.dep_ == "agent":
            subjects.extend(c for c in child.children if c.dep_ == "pobj")
        elif child.dep_ in _PASSIVE_SUBJECTS or child.dep_ in _OBJECTS:
            objects.append(child)
    if not subjects and verb.dep_ in ("xcomp", "conj") and verb.head.pos_ in ("VERB", "AUX"):
        subjects = [c for c in verb.head.children if c.dep_ in _SUBJECTS]
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
    words = {_key(t) for t in [*parts, token] if not t.is_punct}
    if token.pos_ != "PROPN" and not token.ent_type_:
        return {token.lemma_.lower()}
    return words - {"the", "'s"}


_CLAUSES = frozenset({"relcl", "ccomp", "advcl", "conj", "parataxis", "csubj"})


def _own_clause(verb: Any) -> set[int]:
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


def _in_clause(arg: Any, verb: Any) -> bool:
    """Whether a thing the claim names is attached to ``verb``'s own clause (not to a
    clause inside it with a subject of its own)."""
    if arg.pos_ not in ("NOUN", "PROPN", "NUM"):
        return False
    own = [verb]
    while own:
        token = own.pop()
        for child in token.children:
            if child.dep_ in _SUBJECTS | _PASSIVE_SUBJECTS | _OBJECTS or child.dep_ in (
                "relcl",
                "ccomp",
                "advcl",
                "conj",
            ):
                continue
            if _same(arg, child):
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


def _same(a: Any, b: Any) -> bool:
    """Whether two argument tokens stand for the same thing (a pronoun stands for the
    name before it, or for any name when the text gives none)."""
    if a is None or b is None:
        return False
    for pronoun, other in ((b, a), (a, b)):
        if pronoun.pos_ == "PRON" and other.pos_ != "PRON":
            named = _antecedent(pronoun)
            return named is None or _same(other, named)
    if a.text.lower() in _PRONOUNS or b.text.lower() in _PRONOUNS:
        return bool(a.pos_ == "PRON" or b.pos_ == "PRON" or a.text.lower() == b.text.lower())
    mine, theirs = _words(a), _words(b)
    if not mine or not theirs:
        return False
    if mine <= theirs or theirs <= mine:
        return True
    country = country_key(a.text)
    return country is not None and country == country_key(b.text)


def _phrase(token: Any) -> str:
    parts = [t for t in token.subtree if t.dep_ in ("compound", "flat", "det", "poss", "amod")]
    tokens = sorted([*(p for p in parts if p.head.i == token.i), token], key=lambda t: t.i)
    return " ".join(str(t.text) for t in tokens)


def _clause(token: Any) -> str:
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

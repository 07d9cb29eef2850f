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

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.clauses import (
    CONDITION_CUES,
    CONDITION_MARKS,
    NEGATORS,
    SUBJECTS,
    arguments,
    clause_text,
    conditions,
    hyphenated,
    identity_path,
    in_clause,
    modality,
    name_runs,
    negated,
    own_clause,
    path_between,
    phrase,
    predicates,
    same_thing,
    word_key,
)
from agents.parsing import cached_parser
from agents.places import name_places, place_of
from agents.values import country_key, quantities, same_quantity
from extractors import SpacyEntityExtractor
from graph.provenance import Verdict

__all__ = ["Entailment", "Judgement"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """A claim's verdict against the cited text, and why."""

    verdict: Verdict
    reason: str


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
_CONTENT_POS = frozenset({"NOUN", "ADJ"})


class Entailment:
    """Judges claims against cited text with the spaCy parse (see the module doc)."""

    def __init__(self, extractor: SpacyEntityExtractor) -> None:
        self._extractor = extractor
        self._parse = cached_parser(extractor)

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
        keep = set(inside) & (NEGATORS | CONDITION_MARKS) or CONDITION_CUES.search(match.group(1))
        return match.group(0) if keep else ""

    return _ASIDE.sub(drop, text)


class _Judge:
    def __init__(self, claim: Any, sources: list[Any], names: tuple[str, ...]) -> None:
        self.claim = claim
        self.sources = sources
        self.tokens = [t for s in sources for t in s]
        self.words = {word_key(t) for t in self.tokens} | {t.lemma_.lower() for t in self.tokens}
        self.source_names = [*name_runs(sources), *(n.lower().split() for n in names)]
        self.source_text = " ".join(word_key(t) for t in self.tokens)

    def run(self) -> Judgement:
        said = " ".join(self.claim.text.split()).strip()
        if any(said == " ".join(str(s.text).split()) for d in self.sources for s in d.sents):
            return Judgement("supported", "the claim is a whole sentence of the cited text")
        for check in (
            self._names,
            self._values,
            self._direction,
            self._content,
            self._predicates,
            self._places,
            self._whole_sentence,
        ):
            judged = check()
            if judged is not None:
                return judged
        return Judgement("supported", "the cited text states it")

    # -- names ---------------------------------------------------------------------------

    def _names(self) -> Judgement | None:
        for run in name_runs([self.claim]):
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
        if len(words) == 1 and (words[0] in self.words or hyphenated(words[0], self.words)):
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
        said = {word_key(t) for t in self.claim} | {t.lemma_.lower() for t in self.claim}
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
                            if (word_key(t) in other or t.lemma_.lower() in other)
                            and word_key(t) not in said
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
            and word_key(t) not in self.words
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
        for verb in predicates(self.claim):
            judged = self._predicate(verb)
            if judged is not None:
                return judged
        for token in self.claim:
            if token.dep_ == "appos" or (token.dep_ == "attr" and token.head.lemma_ == "be"):
                judged = self._link(token)
                if judged is not None:
                    return judged
        return None

    def _places(self) -> Judgement | None:
        """Each name stands where the cited text puts it (see :mod:`agents.places`): two
        names swapped keep every word and verb, but not their places."""
        heads = [t for t in self.tokens if _name_head(t)]
        for token in self.claim:
            if not _name_head(token):
                continue
            same = [t for t in heads if same_thing(token, t) and t.pos_ != "PRON"]
            if not same:
                continue  # named through a pronoun, a country or a cited fact
            mine, theirs = place_of(token), name_places(same)
            if not mine or mine & theirs or (not theirs and token.pos_ != "PROPN"):
                continue  # no place to compare, or one in common
            relation, word = sorted(mine)[0]
            where = {"subj": "the subject of", "obj": "the object of", "is": "described as"}
            return Judgement(
                "unsupported",
                f"in the cited text {phrase(token)!r} is not {where.get(relation, relation)} "
                f"{word!r}",
            )
        return None

    def _whole_sentence(self) -> Judgement | None:
        """A claim that restates a whole cited sentence keeps its number of negations
        (one inside a subordinate clause the parse did not align: "so they do not clash")."""
        words = {t.lemma_.lower() for t in self.claim if t.is_alpha and not t.is_stop}
        for sentence in (s for doc in self.sources for s in doc.sents):
            theirs = {t.lemma_.lower() for t in sentence if t.is_alpha and not t.is_stop}
            if not theirs or len(words & theirs) / len(theirs) < 0.9:
                continue
            quoted = str(sentence.text).strip()
            negations = sum(1 for t in sentence if t.lower_ in NEGATORS)
            if negations % 2 != sum(1 for t in self.claim if t.lower_ in NEGATORS) % 2:
                return Judgement(
                    "contradicted",
                    f"the cited sentence has another number of negations: {quoted!r}",
                )
            judged = _counted(self.claim, sentence)
            if judged is not None:
                return judged
        return None

    def _sentence_polarity(self) -> Judgement | None:
        """For a claim parsed without a verb: its negations against those of the cited
        sentence that shares most of its words."""
        words = {t.lemma_.lower() for t in self.claim if t.is_alpha and not t.is_stop}
        best = max(
            (s for doc in self.sources for s in doc.sents),
            key=lambda s: len(words & {t.lemma_.lower() for t in s}),
        )
        theirs = sum(1 for t in best if t.lower_ in NEGATORS)
        mine = sum(1 for t in self.claim if t.lower_ in NEGATORS)
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
        if negated(mine) != negated(theirs):
            said = "does not state" if negated(mine) else "negates"
            return Judgement(
                "contradicted",
                f"the cited text {said} {theirs.lemma_!r}: {clause_text(theirs)!r}",
            )
        if modality(mine) != modality(theirs):
            return Judgement(
                "unsupported",
                f"the cited text states {theirs.lemma_!r} with another modality: "
                f"{clause_text(theirs)!r}",
            )
        missing = conditions(theirs) - conditions(mine)
        if missing:
            return Judgement(
                "unsupported",
                f"the cited text states it only under a condition ({sorted(missing)[0]!r}): "
                f"{clause_text(theirs)!r}",
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
                if any(same_thing(arg, t) for t in theirs_args):
                    continue
                if any(same_thing(arg, t) for t in other_args) and not any(
                    same_thing(t, arg) for t in theirs_args if t.pos_ != "PRON"
                ):
                    return Judgement(
                        "contradicted",
                        f"roles are swapped: in the cited text {phrase(arg)!r} is not the "
                        f"{role} of {theirs.lemma_!r}: {clause_text(theirs)!r}",
                    )
                if in_clause(arg, theirs):
                    continue  # attached elsewhere in the same clause ("every Christmas Eve")
                if not theirs_args:
                    return Judgement(
                        "unsupported",
                        f"the cited text does not say {phrase(arg)!r} is the {role} of "
                        f"{theirs.lemma_!r}",
                    )
                return Judgement(
                    "unsupported",
                    f"in the cited text the {role} of {theirs.lemma_!r} is "
                    f"{phrase(theirs_args[0])!r}, not {phrase(arg)!r}",
                )
        return None

    def _attachments(self, mine: Any, theirs: Any) -> Judgement | None:
        """Names and numbers the claim attaches to its verb ("born in Paris", "in 2024")
        are attached to the cited verb too (or to what it describes)."""
        scope = own_clause(theirs)
        if theirs.dep_ in ("relcl", "acl"):
            head = theirs.head
            scope |= {head.i} | {c.i for c in head.children if c.dep_ in ("compound", "flat")}
        doc = theirs.doc
        mine_own = own_clause(mine)
        for prep in (c for c in mine.children if c.dep_ in ("prep", "agent", "npadvmod")):
            attached = [
                c
                for c in prep.subtree
                if c.i in mine_own and (c.dep_ in ("pobj", "npadvmod") or c.i == prep.i)
            ]
            for obj in attached:
                if not (obj.pos_ in ("PROPN", "NUM") or obj.ent_type_):
                    continue
                if not any(same_thing(obj, doc[i]) for i in scope):
                    return Judgement(
                        "unsupported",
                        f"the cited text does not connect {phrase(obj)!r} to "
                        f"{theirs.lemma_!r}: {clause_text(theirs)!r}",
                    )
        return None

    def _copula(self, verb: Any) -> Judgement | None:
        subjects = [c for c in verb.children if c.dep_ in SUBJECTS]
        attributes = [c for c in verb.children if c.dep_ in ("attr", "acomp")]
        for attribute in attributes:
            judged = self._linked(subjects, attribute, negated(verb), verb)
            if judged is not None:
                return judged
        return None

    def _link(self, token: Any) -> Judgement | None:
        if token.dep_ == "appos":
            return self._linked([token.head], token, negative=False, verb=None)
        return None

    def _linked(
        self, subjects: list[Any], attribute: Any, negative: bool, verb: Any | None
    ) -> Judgement | None:
        """Whether the cited text links ``subjects`` to ``attribute`` (copula/apposition)."""
        heads = [
            t
            for t in self.tokens
            if t.lemma_.lower() == attribute.lemma_.lower() or word_key(t) == word_key(attribute)
        ]
        if not heads:
            return Judgement("unsupported", f"the cited text does not say {attribute.text!r}")
        best: Judgement | None = None
        for head in heads:
            for subject in subjects or [None]:
                targets = (
                    [t for t in head.doc if same_thing(subject, t)]
                    if subject is not None
                    else [head]
                )
                for target in targets:
                    path = path_between(head, target)
                    if path is None or len(path) > 4 or not identity_path(path):
                        continue
                    be = next((t for t in path if t.lemma_ == "be"), None)
                    if be is None and head.dep_ in ("attr", "acomp"):
                        be = head.head
                    their_negated = negated(be) if be is not None else negated(head)
                    if their_negated != negative:
                        best = Judgement(
                            "contradicted",
                            f"the cited text says the opposite: {clause_text(head)!r}",
                        )
                        continue
                    return self._qualified(attribute, head)
        if best is not None:
            return best
        about = phrase(subjects[0]) if subjects else "it"
        return Judgement(
            "unsupported",
            f"the cited text does not say {about!r} is {phrase(attribute)!r}",
        )

    def _qualified(self, attribute: Any, head: Any) -> Judgement | None:
        """A copula's attribute keeps what qualifies it in the cited text: the names its
        prepositions attach ("a township in Dodge County") and the sentence's conditions."""
        missing = conditions(head) - conditions(attribute.head)
        if missing:
            return Judgement(
                "unsupported",
                f"the cited text states it only under a condition ({sorted(missing)[0]!r}): "
                f"{clause_text(head)!r}",
            )
        scope = own_clause(head)
        for obj in (attribute.doc[i] for i in sorted(own_clause(attribute))):
            if obj.dep_ != "pobj" or not (obj.pos_ in ("PROPN", "NUM") or obj.ent_type_):
                continue
            if not any(same_thing(obj, head.doc[i]) for i in scope):
                return Judgement(
                    "unsupported",
                    f"the cited text does not connect {phrase(obj)!r} to "
                    f"{phrase(head)!r}: {clause_text(head)!r}",
                )
        return None


def _counted(claim: Any, sentence: Any) -> Judgement | None:
    """A claim restating a whole sentence has as many of each direction word and each
    condition as the sentence (a word flipped where the sentence also uses it elsewhere:
    "after it passed … than before" → "before it passed … than before")."""
    quoted = " ".join(str(sentence.text).split())
    mine = Counter(t.lower_ for t in claim) + Counter(t.lemma_.lower() for t in claim)
    theirs = Counter(t.lower_ for t in sentence) + Counter(t.lemma_.lower() for t in sentence)
    for ups, downs in _DIRECTIONS:
        for more, fewer in ((ups, downs), (downs, ups)):
            gained = [w for w in more if mine[w] > theirs[w]]
            lost = [w for w in fewer if mine[w] < theirs[w]]
            if gained and lost:
                return Judgement(
                    "contradicted",
                    f"the claim says {gained[0]!r} where the cited sentence says {lost[0]!r}: "
                    f"{quoted!r}",
                )
    cues = len(CONDITION_CUES.findall(quoted))
    if cues > len(CONDITION_CUES.findall(" ".join(claim.text.split()))):
        return Judgement(
            "unsupported", f"the claim leaves out a condition of the cited sentence: {quoted!r}"
        )
    return None


def _name_head(token: Any) -> bool:
    """Whether a token heads a name (a proper noun not inside a longer name, or a
    people's adjective: "Dutch")."""
    if token.ent_type_ == "NORP" and token.dep_ == "amod" and token.head.pos_ != "PROPN":
        return True
    if token.pos_ != "PROPN":
        return False
    return not (token.dep_ in ("compound", "flat") and token.head.pos_ == "PROPN")


def _known_name(token: Any, judge: _Judge) -> bool:
    country = country_key(token.text)
    return country is not None and any(
        country_key(" ".join(n)) == country for n in judge.source_names
    )

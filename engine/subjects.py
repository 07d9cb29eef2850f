"""Subject requests: find everything Threadline holds about one person, export it as a
report, or erase it.

A subject is an e-mail address (matched as exact text, ignoring case) or a name (matched
ignoring case, at word boundaries, with any whitespace between its words and also as
"Surname, Given"; never inside an e-mail address or a longer title-case name), together
with the multi-word names and aliases of every entity whose name or alias it is (one-word
aliases are only listed, as ``possible_terms``). :func:`find_subject` walks every stored
document (title, text, section headings), chunk, entity, fact, feedback rating, cached
answer and question, and audit record; :func:`erase_subject` replaces each document that
mentions the subject with a redacted version, re-ingested in place (same source, tenant
and access list: a new version, the old one replaced as any changed document is), or
deletes it; masks the subject in feedback, drops the cache entries that mention it and
redacts the audit fields that do (:func:`engine.audit.redact`). Masks keep the length of
what they hide, so offsets stay valid.

Audit records say who did what: their attribution and structure fields (key ids,
tenants, groups, statuses, phases, intents, errors, ids, counts) are never searched nor
redacted, and a subject that is such a value is refused. A free-text field mentions the
subject when its text does; a question hash when it is the SHA-256 of a question
Threadline still knows (feedback, caches) and that question does. Document ids in audit
records are kept: they say who read which document, and are hashes that reveal nothing
once the document is gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from engine.audit import AuditRecord, read_records, redact
from engine.audit_stores import Chain
from engine.cache import normalize_question
from engine.feedback import FeedbackStore
from engine.readers import SourceDocument
from engine.threadline import Threadline
from extractors.privacy import mask_spans
from graph import (
    PUBLIC_GROUP,
    Access,
    DocumentGraph,
    DocumentId,
    InputError,
    NotFoundError,
    Section,
)
from graph.provenance import Answer

__all__ = [
    "EraseReport",
    "Occurrence",
    "Subject",
    "SubjectReport",
    "erase_subject",
    "find_subject",
    "parse_subject",
    "subject_ref",
]

#: Erasing more documents than this needs ``confirm`` (``--yes``).
CONFIRM_OVER = 100
_BATCH = 50
_EXCERPT = 40
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[A-Za-z]{2,}")
_FEEDBACK_FIELDS = ("question", "answer", "comment")
_HASH_FIELDS = frozenset({"question_sha256", "query_sha256"})
#: Audit fields that say who did what, to what, with what result: never redacted (also
#: any ``id``, ``*_id``, ``*_ids``, ``*_sha256``, ``*_salt`` and ``*_kind`` field, and any
#: value that is not text, such as counts).
_ATTRIBUTION = frozenset(
    {
        *("ts", "action", "key_id", "tenant", "groups", "status", "phase", "intent"),
        *("error", "error_code", "request_id", "job_id", "mode", "reason", "scope", "name"),
        *("created", "revoked", "admin", "permissions", "records", "documents", "entities"),
        *("communities", "cited_documents", "verdicts", "answer_verdicts", "delete", "confirm"),
    }
)
_ATTRIBUTION_SUFFIXES = ("_id", "_ids", "_sha256", "_salt", "_kind")
#: A title-case word right after a name: the name is part of a longer one ("Quintero
#: Shipping"), not the subject.
_TITLE_AFTER = re.compile(r"[ \t]+[A-Z][a-z]")
_TITLE_BEFORE = re.compile(r"(?<![\w.])([A-Z][a-z][\w'\u2019-]*)[ \t]+$")
_HONORIFICS = frozenset({"mr", "mrs", "ms", "mx", "miss", "dr", "prof", "sir", "dame"})

Kind = Literal["document", "chunk", "entity", "fact", "feedback", "cache", "audit"]


class Subject(BaseModel):
    """Who a request is about: the value given, its kind and every term searched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str
    kind: Literal["name", "email"]
    terms: tuple[str, ...] = ()
    possible_terms: tuple[str, ...] = ()

    @property
    def mask_type(self) -> str:
        """The personal-data type its masks show."""
        return "EMAIL_ADDRESS" if self.kind == "email" else "PERSON"


class Occurrence(BaseModel):
    """One place that mentions the subject. ``start``/``end`` are document offsets for
    documents and chunks, offsets into the field otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    id: str
    field: str
    document_id: str | None = None
    tenant: str | None = None
    start: int | None = None
    end: int | None = None
    excerpt: str = ""
    line: int | None = None
    match: Literal["text", "entity", "question hash"] = "text"


class SubjectReport(BaseModel):
    """What :func:`find_subject` found: the terms searched, the documents that mention
    the subject and every occurrence. ``possible_terms`` are the single-word names and
    aliases of the subject's entities ("Quintero"): not searched, as they may name someone
    or something else; erase one explicitly when it names the subject."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str
    kind: Literal["name", "email"]
    terms: tuple[str, ...]
    entities: tuple[str, ...]
    documents: tuple[str, ...]
    occurrences: tuple[Occurrence, ...]
    counts: dict[str, int]
    possible_terms: tuple[str, ...] = ()


class EraseReport(BaseModel):
    """What :func:`erase_subject` changed (counts and ids; never the subject itself)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["redact", "delete"]
    documents: int
    replaced: dict[str, str]
    deleted: tuple[str, ...]
    feedback: int
    cache: int
    audit_records: int


def parse_subject(value: str) -> Subject:
    """A name or an e-mail address, checked (:class:`InputError` when it is neither)."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise InputError("name the subject: a person's name or an e-mail address")
    if "@" in text:
        if not _EMAIL.fullmatch(text):
            raise InputError(f"{text!r} is not an e-mail address (like jane@example.com)")
        return Subject(value=text, kind="email", terms=(text,))
    if len(text) < 3 or not any(ch.isalpha() for ch in text):
        raise InputError(
            f"{text!r} is too short to name a person; give a full name or an e-mail address"
        )
    return Subject(value=text, kind="name", terms=(text,))


def subject_ref(subject: Subject) -> dict[str, str]:
    """What an audit record keeps of a subject: its kind and a salted hash (whoever has
    the value can show that this record is about it; the record alone does not say)."""
    salt = secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}\x00{subject.value.casefold()}".encode()).hexdigest()
    return {"subject_kind": subject.kind, "subject_salt": salt, "subject_sha256": digest}


class _Matcher:
    """Where the terms of a subject occur in a text.

    An e-mail address matches as exact text, ignoring case, not inside a longer address. A
    name matches ignoring case, at word boundaries, with any run of whitespace between its
    words and also as "Surname, Given"; never inside an e-mail address or a longer
    title-case name ("Quintero Shipping"; a one-word name not after a title-case word
    either, unless that is an honorific)."""

    def __init__(self, terms: Iterable[str], kind: str) -> None:
        self.kind = kind
        ordered = sorted(set(terms), key=lambda t: (-len(t), t))
        if kind == "email":
            body = "|".join(re.escape(t) for t in ordered)
            self._re = re.compile(rf"(?<![\w.+-])(?:{body})(?![\w-]|\.\w)", re.IGNORECASE)
            return
        forms: list[str] = []
        for term in ordered:
            words = [re.escape(w) for w in term.split()]
            forms.append(r"\s+".join(words))
            if len(words) > 1:
                forms.append(words[-1] + r"\s*,\s*" + r"\s+".join(words[:-1]))
        body = "|".join(forms)
        self._re = re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each occurrence in ``text``."""
        found = [(m.start(), m.end()) for m in self._re.finditer(text)]
        if self.kind == "email" or not found:
            return found
        emails = [(m.start(), m.end()) for m in _EMAIL.finditer(text)] if "@" in text else []
        return [
            (start, end)
            for start, end in found
            if not any(a < end and start < b for a, b in emails)
            and not _TITLE_AFTER.match(text, end)
            and not (_one_word(text[start:end]) and _after_title_word(text, start))
        ]

    def search(self, text: str) -> tuple[int, int] | None:
        """The first occurrence in ``text``, if any."""
        if not self._re.search(text):
            return None
        spans = self.spans(text)
        return spans[0] if spans else None


def _one_word(text: str) -> bool:
    return not any(ch.isspace() or ch == "," for ch in text)


def _after_title_word(text: str, start: int) -> bool:
    found = _TITLE_BEFORE.search(text[max(0, start - 40) : start])
    return found is not None and found.group(1).casefold() not in _HONORIFICS


def _strings(value: Any) -> Iterable[str]:
    """Every string in a JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _excerpt(text: str, start: int, end: int) -> str:
    return text[max(0, start - _EXCERPT) : end + _EXCERPT]


async def _resolve(tl: Threadline, subject: Subject) -> tuple[Subject, list[str]]:
    """The subject with the names and aliases of its entities, and those entities' ids.

    Only names of more than one word (an e-mail subject: only addresses) become terms;
    the others are kept as ``possible_terms``."""
    found = await tl.graph.match_entities([subject.value], Access.admin())
    entities = [e for matches in found.values() for e in matches]
    if subject.kind == "name":
        # Entities named exactly so (any case), beyond the store's own normalisation.
        for entity in await tl.graph.search_entities(subject.value, Access.admin(), limit=200):
            names = {entity.name.casefold(), *(a.casefold() for a in entity.aliases)}
            if subject.value.casefold() in names and entity not in entities:
                entities.append(entity)
    terms = {_key(subject.value): subject.value}
    possible: dict[str, str] = {}
    for entity in entities:
        for name in (entity.name, *entity.aliases):
            if len(name) < 3 or not any(ch.isalpha() for ch in name):
                continue
            if subject.kind == "email":
                wanted = _EMAIL.fullmatch(name.strip()) is not None
            else:
                wanted = len(name.split()) > 1 and "@" not in name
            (terms if wanted else possible).setdefault(_key(name), name)
    update = {
        "terms": tuple(sorted(terms.values(), key=str.casefold)),
        "possible_terms": tuple(
            sorted((v for k, v in possible.items() if k not in terms), key=str.casefold)
        ),
    }
    return subject.model_copy(update=update), sorted({e.id for e in entities})


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


async def _all_documents(tl: Threadline) -> list[DocumentId]:
    ids: list[DocumentId] = []
    while True:
        page = await tl.graph.documents(Access.admin(), limit=1000, offset=len(ids))
        ids += [d.id for d in page]
        if len(page) < 1000:
            return ids


def _document_hits(
    graph: DocumentGraph, matcher: _Matcher, entity_ids: set[str]
) -> list[Occurrence]:
    doc = graph.document
    base: dict[str, Any] = {"document_id": doc.id, "tenant": doc.tenant}
    hits: list[Occurrence] = []
    for name, text in (("source", doc.source), ("title", doc.title)):
        hits += _text_hits("document", doc.id, name, text, matcher, **base)
    for number, about in enumerate(doc.about):  # read from the text: re-read on redaction
        hits += _text_hits("document", doc.id, f"about[{number}]", about, matcher, **base)
    for number, section in enumerate(doc.sections):
        field = f"sections[{number}].heading"
        hits += _text_hits("document", doc.id, field, section.heading or "", matcher, **base)
    hits += _text_hits("document", doc.id, "text", doc.text, matcher, **base)
    for chunk in graph.chunks:
        hits += _text_hits("chunk", chunk.id, "text", chunk.text, matcher, at=chunk.start, **base)
    for entity in graph.entities:
        names = [("name", entity.name)] + [
            (f"aliases[{i}]", a) for i, a in enumerate(entity.aliases)
        ]
        for name, text in names:
            if entity.id in entity_ids or matcher.search(text) is not None:
                hits.append(
                    Occurrence(
                        kind="entity",
                        id=entity.id,
                        field=name,
                        excerpt=text,
                        match="entity" if entity.id in entity_ids else "text",
                        **base,
                    )
                )
    for relation in graph.relations:
        named = {relation.subject_id, relation.object_id} & entity_ids
        quoted = [s for s in relation.evidence if matcher.search(s.text) is not None]
        if named or quoted:
            first = (quoted or list(relation.evidence))[0]
            hits.append(
                Occurrence(
                    kind="fact",
                    id=relation.id,
                    field="evidence",
                    start=first.start,
                    end=first.end,
                    excerpt=first.text,
                    match="entity" if named else "text",
                    **base,
                )
            )
    return hits


def _text_hits(
    kind: Kind, ident: str, field: str, text: str, matcher: _Matcher, at: int = 0, **extra: Any
) -> list[Occurrence]:
    """An occurrence for each match in ``text`` (offsets shifted by ``at``)."""
    return [
        Occurrence(
            kind=kind,
            id=ident,
            field=field,
            start=at + start,
            end=at + end,
            excerpt=_excerpt(text, start, end),
            **extra,
        )
        for start, end in matcher.spans(text)
    ]


def _question_hashes(questions: Iterable[str]) -> set[str]:
    """The SHA-256 the audit log keeps of each question, as asked and as normalised."""
    out = set()
    for question in questions:
        for form in {question, question.strip(), normalize_question(question)}:
            out.add(hashlib.sha256(form.encode()).hexdigest())
    return out


def _attribution_field(name: str) -> bool:
    """Whether an audit field says who did what to what (never redacted)."""
    if name in _HASH_FIELDS:
        return False
    return name in _ATTRIBUTION or name in {"id", "ids"} or name.endswith(_ATTRIBUTION_SUFFIXES)


def _audit_fields(
    record: AuditRecord, matcher: _Matcher, hashes: set[str]
) -> list[tuple[str, Literal["text", "question hash"], str]]:
    """(field, match, excerpt) of each field of an audit record that mentions the subject:
    a question hash of a question that does, or a free-text field. Attribution and
    structure fields (:data:`_ATTRIBUTION`, ids, counts) never count."""
    out: list[tuple[str, Literal["text", "question hash"], str]] = []
    for name, value in record.fields.items():
        if name in _HASH_FIELDS:
            if value in hashes:
                out.append((name, "question hash", str(value)))
            continue
        if _attribution_field(name):
            continue
        for text in _strings(value):
            if (found := matcher.search(text)) is not None:
                out.append((name, "text", _excerpt(text, *found)))
                break
    return out


def _attribution_values(path: Path | Chain | None) -> set[str]:
    """Every value (case-folded) of the audit log's attribution fields: key ids, tenants,
    groups, actions, statuses and so on."""
    values: set[str] = set()
    for record in read_records(path) if path is not None else []:
        for name, value in record.fields.items():
            if _attribution_field(name):
                values.update(text.casefold() for text in _strings(value))
    return values


def _cache_texts(tl: Threadline) -> list[tuple[str, str, str]]:
    """(entry id, field, text) of every cached answer and question."""
    out: list[tuple[str, str, str]] = []
    cache = tl.answer_cache
    for answer in cache.answers() if cache is not None else []:
        ident = "answer:" + hashlib.sha256(answer.model_dump_json().encode()).hexdigest()[:16]
        out += [(ident, "question", answer.question), (ident, "answer", answer.answer)]
        claims = json.dumps([c.model_dump(mode="json") for c in answer.claims], ensure_ascii=False)
        out.append((ident, "claims", claims))
    for text in tl.query_cache.texts():
        ident = "query:" + hashlib.sha256(text.encode()).hexdigest()[:16]
        out.append((ident, "question", text))
    return out


async def find_subject(
    tl: Threadline,
    value: str,
    *,
    feedback: FeedbackStore | None = None,
    audit_path: Path | Chain | None = None,
) -> SubjectReport:
    """Every occurrence of the subject ``value`` (a name or an e-mail address) in the
    documents, chunks, entities, facts, feedback, caches and audit log."""
    subject, entity_ids = await _resolve(tl, parse_subject(value))
    matcher = _Matcher(subject.terms, subject.kind)
    found: list[Occurrence] = []
    documents: list[str] = []
    ids = await _all_documents(tl)
    for start in range(0, len(ids), _BATCH):
        for graph in await tl.graph.export(ids[start : start + _BATCH]):
            hits = _document_hits(graph, matcher, set(entity_ids))
            if hits:
                documents.append(graph.document.id)
            found += hits
    questions: list[str] = []
    found += await _feedback_hits(feedback, matcher, questions)
    found += _cache_hits(tl, matcher, questions)
    if audit_path is not None:
        found += await asyncio.to_thread(_audit_hits, audit_path, matcher, questions)
    counts: dict[str, int] = {}
    for hit in found:
        counts[hit.kind] = counts.get(hit.kind, 0) + 1
    return SubjectReport(
        subject=subject.value,
        kind=subject.kind,
        terms=subject.terms,
        possible_terms=subject.possible_terms,
        entities=tuple(entity_ids),
        documents=tuple(documents),
        occurrences=tuple(found),
        counts=counts,
    )


async def _feedback_hits(
    store: FeedbackStore | None, matcher: _Matcher, questions: list[str]
) -> list[Occurrence]:
    """Occurrences in feedback; the questions that mention the subject go to ``questions``."""
    found: list[Occurrence] = []
    for row in await store.texts() if store is not None else []:
        for name in _FEEDBACK_FIELDS:
            text = row[name] or ""
            hits = _text_hits("feedback", row["id"], name, text, matcher, tenant=row["tenant"])
            if hits and name == "question":
                questions.append(text)
            found += hits
    return found


def _cache_hits(tl: Threadline, matcher: _Matcher, questions: list[str]) -> list[Occurrence]:
    """Occurrences in the caches; the questions that mention the subject go to ``questions``."""
    found: list[Occurrence] = []
    for ident, name, text in _cache_texts(tl):
        hits = _text_hits("cache", ident, name, text, matcher)
        if hits and name == "question":
            questions.append(text)
        found += hits
    return found


def _audit_hits(
    path: Path | Chain, matcher: _Matcher, questions: Sequence[str]
) -> list[Occurrence]:
    hashes = _question_hashes(questions)
    return [
        Occurrence(
            kind="audit", id=record.digest, field=name, line=record.line, excerpt=excerpt, match=how
        )
        for record in read_records(path)
        for name, how, excerpt in _audit_fields(record, matcher, hashes)
    ]


def _redacted(graph: DocumentGraph, matcher: _Matcher, mask: str) -> SourceDocument:
    doc = graph.document

    def masked(text: str) -> str:
        return mask_spans(text, [(start, end, mask) for start, end in matcher.spans(text)])

    sections = tuple(
        Section(
            start=s.start,
            end=s.end,
            page=s.page,
            heading=masked(s.heading) if s.heading else s.heading,
        )
        for s in doc.sections
    )
    return SourceDocument(
        source=doc.source,
        title=masked(doc.title),
        text=masked(doc.text),
        origin=f"redacted version of {doc.id}",
        sections=sections,
    )


async def erase_subject(
    tl: Threadline,
    report: SubjectReport,
    *,
    delete: bool = False,
    confirm: bool = False,
    feedback: FeedbackStore | None = None,
    audit_path: Path | Chain | None = None,
    audit_fields: dict[str, Any] | None = None,
) -> EraseReport:
    """Erase what ``report`` (:func:`find_subject`) found: documents redacted and
    re-ingested in place (or deleted when ``delete``), feedback masked, cache entries
    dropped, audit fields redacted (with ``audit_fields`` on the ``audit.redact`` record).

    :class:`NotFoundError` when nothing mentions the subject; :class:`InputError` when the
    subject is a key id, tenant, group or other attribution value of the audit log or a
    document's tenant or group (those are never redacted), when only audit fields mention
    it, when more than :data:`CONFIRM_OVER` documents would change without ``confirm``, or
    when a document's source (its id, kept by a re-ingest) names the subject and
    ``delete`` is not set. Nothing is changed in any of these cases.
    """
    await _refuse_attribution(tl, report.subject, audit_path)
    if not report.occurrences:
        raise NotFoundError(
            f"nothing mentions {report.subject!r}: check the spelling (an e-mail address "
            "must match exactly; a name matches whole words, or an entity's name or alias)"
        )
    if all(o.kind == "audit" for o in report.occurrences):
        raise InputError(
            f"only audit records mention {report.subject!r}: the audit log keeps who did "
            "what (key ids, tenants, groups, ids, counts) and is never redacted for that; "
            "name a person or an e-mail address that documents, feedback or caches hold"
        )
    if len(report.documents) > CONFIRM_OVER and not confirm:
        raise InputError(
            f"{len(report.documents)} documents mention {report.subject!r}; check the export "
            '(`threadline subject export`), then confirm with --yes (API: "confirm": true)'
        )
    named = sorted(
        {o.id for o in report.occurrences if o.kind == "document" and o.field == "source"}
    )
    if named and not delete:
        raise InputError(
            f"the source of document(s) {', '.join(named)} names the subject, and a redacted "
            'version keeps its source: erase with --delete (API: "delete": true)'
        )
    subject = Subject(value=report.subject, kind=report.kind, terms=report.terms)
    matcher = _Matcher(subject.terms, subject.kind)
    ids = [DocumentId(d) for d in report.documents]
    replaced: dict[str, str] = {}
    deleted: tuple[str, ...] = ()
    if ids and delete:
        await tl.delete(ids, Access.admin())
        deleted = tuple(ids)
    elif ids:
        replaced = await _reingest(tl, ids, matcher, subject.mask_type)
    changed = await _scrub_feedback(feedback, matcher, subject.mask_type)
    dropped = _scrub_caches(tl, matcher)
    # The question hashes the export matched (the questions may be masked by now).
    hashes = {o.excerpt for o in report.occurrences if o.match == "question hash"}
    redacted: dict[str, list[str]] = {}
    if audit_path is not None:
        redacted = await asyncio.to_thread(
            _redact_audit, audit_path, matcher, hashes, audit_fields or {}
        )
    return EraseReport(
        mode="delete" if delete else "redact",
        documents=len(deleted or replaced),
        replaced=replaced,
        deleted=deleted,
        feedback=changed,
        cache=dropped,
        audit_records=len(redacted),
    )


async def _refuse_attribution(tl: Threadline, value: str, audit_path: Path | Chain | None) -> None:
    """:class:`InputError` when ``value`` is a key id, tenant, group or other attribution
    value (of the audit log, or a document's tenant or group)."""
    folded = " ".join(value.split()).casefold()
    values = await asyncio.to_thread(_attribution_values, audit_path)
    offset = 0
    while folded not in values:
        page = await tl.graph.documents(Access.admin(), limit=1000, offset=offset)
        for doc in page:
            values.update(v.casefold() for v in (doc.tenant or "", *doc.groups))
        offset += len(page)
        if len(page) < 1000:
            break
    if folded in values:
        raise InputError(
            f"{value!r} is a key id, tenant, group or other value the audit log uses to say "
            "who did what; that is never erased. Name a person or an e-mail address"
        )


async def _reingest(
    tl: Threadline, ids: Sequence[DocumentId], matcher: _Matcher, mask: str
) -> dict[str, str]:
    """Re-ingest the redacted version of each document that changes (old id -> new id).
    A document is identified by its text: when only its title or section headings change,
    it is deleted first, or the re-ingest would find it unchanged and keep them."""
    replaced: dict[str, str] = {}
    for start in range(0, len(ids), _BATCH):
        graphs = await tl.graph.export(ids[start : start + _BATCH])
        for graph in graphs:
            doc = graph.document
            redacted = _redacted(graph, matcher, mask)
            if redacted.text == doc.text:
                if (redacted.title, redacted.sections) == (doc.title, tuple(doc.sections)):
                    continue  # only its entities or facts matched: nothing to mask
                await tl.delete([doc.id], Access.admin())
            groups = [g for g in doc.groups if g != PUBLIC_GROUP]
            result = await tl.ingest([redacted], tenant=doc.tenant, groups=groups)
            replaced[doc.id] = result.document_ids[0]
        await tl.forget_replaced(graphs)
    return replaced


async def _scrub_feedback(store: FeedbackStore | None, matcher: _Matcher, mask: str) -> int:
    if store is None:
        return 0
    changes: dict[str, dict[str, str]] = {}
    for row in await store.texts():
        for name in _FEEDBACK_FIELDS:
            text = row[name] or ""
            spans = [(start, end, mask) for start, end in matcher.spans(text)]
            if spans:
                changes.setdefault(row["id"], {})[name] = mask_spans(text, spans)
    if changes:
        await store.rewrite(changes)
    return len(changes)


def _scrub_caches(tl: Threadline, matcher: _Matcher) -> int:
    def mentions(answer: Answer) -> bool:
        found = (matcher.search(t) for t in _strings(answer.model_dump(mode="json")))
        return any(f is not None for f in found)

    dropped = tl.query_cache.drop(lambda text: matcher.search(text) is not None)
    if tl.answer_cache is not None:
        dropped += tl.answer_cache.drop(mentions)
    return dropped


def _redact_audit(
    path: Path | Chain, matcher: _Matcher, hashes: set[str], fields: dict[str, Any]
) -> dict[str, list[str]]:
    select: Callable[[AuditRecord], list[str]] = lambda record: [  # noqa: E731
        name for name, _, _ in _audit_fields(record, matcher, hashes)
    ]
    return redact(path, select, **fields)

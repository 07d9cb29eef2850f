"""Subject requests: find everything Threadline holds about one person, export it as a
report, or erase it.

A subject is an e-mail address (matched as exact text, ignoring case) or a name (matched,
ignoring case and at word boundaries, together with every entity whose name or alias it
is and that entity's other names and aliases). :func:`find_subject` walks every stored
document (title, text, section headings), chunk, entity, fact, feedback rating, cached
answer and question, and audit record; :func:`erase_subject` replaces each document that
mentions the subject with a redacted version, re-ingested in place (same source, tenant
and access list: a new version, the old one replaced as any changed document is), or
deletes it; masks the subject in feedback, drops the cache entries that mention it and
redacts the audit fields that do (:func:`engine.audit.redact`). Masks keep the length of
what they hide, so offsets stay valid.

Audit fields hold ids and hashes, not text: a field mentions the subject when its text
does, or when it is the SHA-256 of a question Threadline still knows (feedback, caches)
and that question does. Document ids in audit records are kept: they say who read which
document, and are hashes that reveal nothing once the document is gone.
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

Kind = Literal["document", "chunk", "entity", "fact", "feedback", "cache", "audit"]


class Subject(BaseModel):
    """Who a request is about: the value given, its kind and every term searched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str
    kind: Literal["name", "email"]
    terms: tuple[str, ...] = ()

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
    the subject and every occurrence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str
    kind: Literal["name", "email"]
    terms: tuple[str, ...]
    entities: tuple[str, ...]
    documents: tuple[str, ...]
    occurrences: tuple[Occurrence, ...]
    counts: dict[str, int]


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


def _pattern(terms: Iterable[str], kind: str) -> re.Pattern[str]:
    ordered = sorted(set(terms), key=lambda t: (-len(t), t))
    body = "|".join(re.escape(t) for t in ordered)
    if kind == "email":
        return re.compile(rf"(?<![\w.+-])(?:{body})(?![\w-]|\.\w)", re.IGNORECASE)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


def _excerpt(text: str, start: int, end: int) -> str:
    return text[max(0, start - _EXCERPT) : end + _EXCERPT]


async def _resolve(tl: Threadline, subject: Subject) -> tuple[Subject, list[str]]:
    """The subject with the names and aliases of its entities, and those entities' ids."""
    found = await tl.graph.match_entities([subject.value], Access.admin())
    entities = [e for matches in found.values() for e in matches]
    if subject.kind == "name":
        # Entities named exactly so (any case), beyond the store's own normalisation.
        for entity in await tl.graph.search_entities(subject.value, Access.admin(), limit=200):
            names = {entity.name.casefold(), *(a.casefold() for a in entity.aliases)}
            if subject.value.casefold() in names and entity not in entities:
                entities.append(entity)
    terms = {subject.value.casefold(): subject.value}
    for entity in entities:
        for name in (entity.name, *entity.aliases):
            if len(name) >= 3 and any(ch.isalpha() for ch in name):
                terms.setdefault(name.casefold(), name)
    ordered = tuple(sorted(terms.values(), key=str.casefold))
    return subject.model_copy(update={"terms": ordered}), sorted({e.id for e in entities})


async def _all_documents(tl: Threadline) -> list[DocumentId]:
    ids: list[DocumentId] = []
    while True:
        page = await tl.graph.documents(Access.admin(), limit=1000, offset=len(ids))
        ids += [d.id for d in page]
        if len(page) < 1000:
            return ids


def _document_hits(
    graph: DocumentGraph, pattern: re.Pattern[str], entity_ids: set[str]
) -> list[Occurrence]:
    doc = graph.document
    base = {"document_id": doc.id, "tenant": doc.tenant}
    hits: list[Occurrence] = []
    for name, text in (("source", doc.source), ("title", doc.title)):
        hits += [
            Occurrence(
                kind="document",
                id=doc.id,
                field=name,
                start=m.start(),
                end=m.end(),
                excerpt=_excerpt(text, m.start(), m.end()),
                **base,
            )
            for m in pattern.finditer(text)
        ]
    for number, section in enumerate(doc.sections):
        hits += [
            Occurrence(
                kind="document",
                id=doc.id,
                field=f"sections[{number}].heading",
                start=m.start(),
                end=m.end(),
                excerpt=section.heading or "",
                **base,
            )
            for m in pattern.finditer(section.heading or "")
        ]
    hits += [
        Occurrence(
            kind="document",
            id=doc.id,
            field="text",
            start=m.start(),
            end=m.end(),
            excerpt=_excerpt(doc.text, m.start(), m.end()),
            **base,
        )
        for m in pattern.finditer(doc.text)
    ]
    for chunk in graph.chunks:
        hits += [
            Occurrence(
                kind="chunk",
                id=chunk.id,
                field="text",
                start=chunk.start + m.start(),
                end=chunk.start + m.end(),
                excerpt=_excerpt(chunk.text, m.start(), m.end()),
                **base,
            )
            for m in pattern.finditer(chunk.text)
        ]
    for entity in graph.entities:
        names = [("name", entity.name)] + [
            (f"aliases[{i}]", a) for i, a in enumerate(entity.aliases)
        ]
        for name, text in names:
            if entity.id in entity_ids or pattern.search(text):
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
        quoted = [s for s in relation.evidence if pattern.search(s.text)]
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
    kind: Kind, ident: str, field: str, text: str, pattern: re.Pattern[str], **extra: Any
) -> list[Occurrence]:
    return [
        Occurrence(
            kind=kind,
            id=ident,
            field=field,
            start=m.start(),
            end=m.end(),
            excerpt=_excerpt(text, m.start(), m.end()),
            **extra,
        )
        for m in pattern.finditer(text)
    ]


def _question_hashes(questions: Iterable[str]) -> set[str]:
    """The SHA-256 the audit log keeps of each question, as asked and as normalised."""
    out = set()
    for question in questions:
        for form in {question, question.strip(), normalize_question(question)}:
            out.add(hashlib.sha256(form.encode()).hexdigest())
    return out


def _audit_fields(
    record: AuditRecord, pattern: re.Pattern[str], hashes: set[str]
) -> list[tuple[str, Literal["text", "question hash"], str]]:
    """(field, match, excerpt) of each field of an audit record that mentions the subject."""
    out: list[tuple[str, Literal["text", "question hash"], str]] = []
    for name, value in record.fields.items():
        if name in {"ts", "action"}:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if name in _HASH_FIELDS and value in hashes:
            out.append((name, "question hash", str(value)))
        elif (found := pattern.search(text)) is not None:
            out.append((name, "text", _excerpt(text, found.start(), found.end())))
    return out


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
    audit_path: Path | None = None,
) -> SubjectReport:
    """Every occurrence of the subject ``value`` (a name or an e-mail address) in the
    documents, chunks, entities, facts, feedback, caches and audit log."""
    subject, entity_ids = await _resolve(tl, parse_subject(value))
    pattern = _pattern(subject.terms, subject.kind)
    found: list[Occurrence] = []
    documents: list[str] = []
    ids = await _all_documents(tl)
    for start in range(0, len(ids), _BATCH):
        for graph in await tl.graph.export(ids[start : start + _BATCH]):
            hits = _document_hits(graph, pattern, set(entity_ids))
            if hits:
                documents.append(graph.document.id)
            found += hits
    questions: list[str] = []
    found += await _feedback_hits(feedback, pattern, questions)
    found += _cache_hits(tl, pattern, questions)
    if audit_path is not None:
        found += await asyncio.to_thread(_audit_hits, audit_path, pattern, questions)
    counts: dict[str, int] = {}
    for hit in found:
        counts[hit.kind] = counts.get(hit.kind, 0) + 1
    return SubjectReport(
        subject=subject.value,
        kind=subject.kind,
        terms=subject.terms,
        entities=tuple(entity_ids),
        documents=tuple(documents),
        occurrences=tuple(found),
        counts=counts,
    )


async def _feedback_hits(
    store: FeedbackStore | None, pattern: re.Pattern[str], questions: list[str]
) -> list[Occurrence]:
    """Occurrences in feedback; the questions that mention the subject go to ``questions``."""
    found: list[Occurrence] = []
    for row in await store.texts() if store is not None else []:
        for name in _FEEDBACK_FIELDS:
            text = row[name] or ""
            hits = _text_hits("feedback", row["id"], name, text, pattern, tenant=row["tenant"])
            if hits and name == "question":
                questions.append(text)
            found += hits
    return found


def _cache_hits(tl: Threadline, pattern: re.Pattern[str], questions: list[str]) -> list[Occurrence]:
    """Occurrences in the caches; the questions that mention the subject go to ``questions``."""
    found: list[Occurrence] = []
    for ident, name, text in _cache_texts(tl):
        hits = _text_hits("cache", ident, name, text, pattern)
        if hits and name == "question":
            questions.append(text)
        found += hits
    return found


def _audit_hits(path: Path, pattern: re.Pattern[str], questions: Sequence[str]) -> list[Occurrence]:
    hashes = _question_hashes(questions)
    return [
        Occurrence(
            kind="audit", id=record.digest, field=name, line=record.line, excerpt=excerpt, match=how
        )
        for record in read_records(path)
        for name, how, excerpt in _audit_fields(record, pattern, hashes)
    ]


def _redacted(graph: DocumentGraph, pattern: re.Pattern[str], mask: str) -> SourceDocument:
    doc = graph.document

    def masked(text: str) -> str:
        return mask_spans(text, [(m.start(), m.end(), mask) for m in pattern.finditer(text)])

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
    audit_path: Path | None = None,
    audit_fields: dict[str, Any] | None = None,
) -> EraseReport:
    """Erase what ``report`` (:func:`find_subject`) found: documents redacted and
    re-ingested in place (or deleted when ``delete``), feedback masked, cache entries
    dropped, audit fields redacted (with ``audit_fields`` on the ``audit.redact`` record).

    :class:`NotFoundError` when nothing mentions the subject; :class:`InputError` when
    more than :data:`CONFIRM_OVER` documents would change without ``confirm``, or when a
    document's source (its id, kept by a re-ingest) names the subject and ``delete`` is
    not set. Nothing is changed in either case.
    """
    if not report.occurrences:
        raise NotFoundError(
            f"nothing mentions {report.subject!r}: check the spelling (an e-mail address "
            "must match exactly; a name matches whole words, or an entity's name or alias)"
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
    pattern = _pattern(subject.terms, subject.kind)
    ids = [DocumentId(d) for d in report.documents]
    replaced: dict[str, str] = {}
    deleted: tuple[str, ...] = ()
    if ids and delete:
        await tl.delete(ids, Access.admin())
        deleted = tuple(ids)
    elif ids:
        replaced = await _reingest(tl, ids, pattern, subject.mask_type)
    changed = await _scrub_feedback(feedback, pattern, subject.mask_type)
    dropped = _scrub_caches(tl, pattern)
    # The question hashes the export matched (the questions may be masked by now).
    hashes = {o.excerpt for o in report.occurrences if o.match == "question hash"}
    redacted: dict[str, list[str]] = {}
    if audit_path is not None:
        redacted = await asyncio.to_thread(
            _redact_audit, audit_path, pattern, hashes, audit_fields or {}
        )
    return EraseReport(
        mode="delete" if delete else "redact",
        documents=len(ids),
        replaced=replaced,
        deleted=deleted,
        feedback=changed,
        cache=dropped,
        audit_records=len(redacted),
    )


async def _reingest(
    tl: Threadline, ids: Sequence[DocumentId], pattern: re.Pattern[str], mask: str
) -> dict[str, str]:
    replaced: dict[str, str] = {}
    for start in range(0, len(ids), _BATCH):
        graphs = await tl.graph.export(ids[start : start + _BATCH])
        for graph in graphs:
            doc = graph.document
            groups = [g for g in doc.groups if g != PUBLIC_GROUP]
            result = await tl.ingest(
                [_redacted(graph, pattern, mask)], tenant=doc.tenant, groups=groups
            )
            replaced[doc.id] = result.document_ids[0]
        await tl.forget_replaced(graphs)
    return replaced


async def _scrub_feedback(store: FeedbackStore | None, pattern: re.Pattern[str], mask: str) -> int:
    if store is None:
        return 0
    changes: dict[str, dict[str, str]] = {}
    for row in await store.texts():
        for name in _FEEDBACK_FIELDS:
            text = row[name] or ""
            spans = [(m.start(), m.end(), mask) for m in pattern.finditer(text)]
            if spans:
                changes.setdefault(row["id"], {})[name] = mask_spans(text, spans)
    if changes:
        await store.rewrite(changes)
    return len(changes)


def _scrub_caches(tl: Threadline, pattern: re.Pattern[str]) -> int:
    def mentions(answer: Answer) -> bool:
        return bool(pattern.search(answer.model_dump_json()))

    dropped = tl.query_cache.drop(lambda text: bool(pattern.search(text)))
    if tl.answer_cache is not None:
        dropped += tl.answer_cache.drop(mentions)
    return dropped


def _redact_audit(
    path: Path, pattern: re.Pattern[str], hashes: set[str], fields: dict[str, Any]
) -> dict[str, list[str]]:
    select: Callable[[AuditRecord], list[str]] = lambda record: [  # noqa: E731
        name for name, _, _ in _audit_fields(record, pattern, hashes)
    ]
    return redact(path, select, **fields)

"""Entity resolution with the real embedder."""

from __future__ import annotations

from typing import Any

import pytest

from extractors import (
    ChunkExtraction,
    EntityResolver,
    RawMention,
    SentenceChunker,
    SentenceTransformerEmbedder,
)
from graph import Document, Entity, content_hash, document_id, entity_id, entity_scope


def _doc(
    text: str, source: str = "s", *, tenant: str = "t", groups: tuple[str, ...] = ("*",)
) -> Document:
    digest = content_hash(text)
    return Document(
        id=document_id(tenant, source, digest + "|" + ",".join(groups)),
        source=source,
        title=source,
        version=1,
        tenant=tenant,
        groups=groups,
        content_hash=digest,
        text=text,
    )


def _mentions(doc: Document, names: list[tuple[str, str]]) -> list[ChunkExtraction]:
    """One chunk holding the whole text, with the given (surface, label) mentions."""
    chunk = SentenceChunker(max_chars=5000).chunk(doc.id, doc.text)[0]
    raws = []
    for surface, label in names:
        start = doc.text.index(surface)
        raws.append(RawMention(text=surface, label=label, start=start, end=start + len(surface)))
    return [ChunkExtraction(chunk=chunk, mentions=tuple(raws), relations=())]


def _resolve(
    resolver: EntityResolver,
    text: str,
    names: list[tuple[str, str]],
    source: str = "s",
    **scope: Any,
):
    doc = _doc(text, source, **scope)
    graph = resolver.resolve(doc, _mentions(doc, names))
    by_surface = {}
    for m in graph.mentions:
        by_surface[m.span.text] = m.entity_id
    return graph, by_surface


def test_surname_acronym_and_case_resolve_to_one_entity() -> None:
    resolver = EntityResolver()
    text = "John Smith joined the United Nations. Smith said the UN and the united nations agree."
    _, ids = _resolve(
        resolver,
        text,
        [
            ("John Smith", "PERSON"),
            ("United Nations", "ORG"),
            ("Smith", "PERSON"),
            ("UN", "ORG"),
            ("united nations", "ORG"),
        ],
    )
    assert ids["Smith"] == ids["John Smith"]
    assert ids["UN"] == ids["United Nations"] == ids["united nations"]


def test_types_never_merge_across_families() -> None:
    resolver = EntityResolver()
    _, ids = _resolve(resolver, "Jordan visited Jordan.", [("Jordan", "PERSON")])
    graph, ids2 = _resolve(resolver, "He flew to Jordan.", [("Jordan", "GPE")], source="s2")
    assert ids["Jordan"] != ids2["Jordan"]
    assert graph.entities[0].type == "GPE"


def test_accents_fold_and_aliases_accumulate() -> None:
    resolver = EntityResolver()
    _, a = _resolve(resolver, "Zoë Saldaña acted.", [("Zoë Saldaña", "PERSON")])
    graph, b = _resolve(resolver, "Zoe Saldana acted.", [("Zoe Saldana", "PERSON")], source="s2")
    assert a["Zoë Saldaña"] == b["Zoe Saldana"]
    assert "Zoe Saldana" in graph.entities[0].aliases


def test_embedding_merge_is_guarded_by_numbers(embedder: SentenceTransformerEmbedder) -> None:
    resolver = EntityResolver(embed=embedder.embed_sync, threshold=0.85)
    _, a = _resolve(resolver, "Lothair I ruled.", [("Lothair I", "PERSON")])
    _, b = _resolve(resolver, "Lothair II ruled.", [("Lothair II", "PERSON")], source="s2")
    assert a["Lothair I"] != b["Lothair II"]
    _, c = _resolve(
        resolver, "The Beatles Band played.", [("The Beatles Band", "ORG")], source="s3"
    )
    _, d = _resolve(resolver, "Beatles Band played.", [("Beatles Band", "ORG")], source="s4")
    assert c["The Beatles Band"] == d["Beatles Band"]


def test_relations_get_entity_ids_and_sentence_evidence(extractor, embedder) -> None:
    resolver = EntityResolver(embed=embedder.embed_sync)
    doc = _doc("Paris is the capital of France. France borders Spain.")
    exts = extractor.extract(SentenceChunker().chunk(doc.id, doc.text))
    graph = resolver.resolve(doc, exts)
    names = {e.id: e.name for e in graph.entities}
    facts = {(names[r.subject_id], r.predicate, names[r.object_id]) for r in graph.relations}
    assert ("Paris", "capital_of", "France") in facts
    for rel in graph.relations:
        for span in rel.evidence:
            assert doc.text[span.start : span.end] == span.text
        if rel.kind == "cooccurrence":
            assert rel.subject_id < rel.object_id


ZQH_FULL = "Zorblax Quantum Holdings (ZQH) will acquire Plinth Robotics."
ZQH_SHORT = "A spokesperson for ZQH said the deal was on track."
_FULL_NAMES = [("Zorblax Quantum Holdings", "ORG"), ("ZQH", "ORG"), ("Plinth Robotics", "ORG")]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"tenant": "bravo"}, {"tenant": "acme"}),
        ({"tenant": "acme", "groups": ("g2",)}, {"tenant": "acme", "groups": ("g1",)}),
        ({"tenant": "acme", "groups": ("g1", "g2")}, {"tenant": "acme", "groups": ("g1",)}),
    ],
)
@pytest.mark.parametrize("full_first", [True, False])
def test_resolution_never_crosses_scopes(
    first: dict[str, Any], second: dict[str, Any], full_first: bool
) -> None:
    """An acronym in one scope never resolves to, or lends an alias to, another's name."""
    resolver = EntityResolver()
    steps = [(ZQH_FULL, _FULL_NAMES, first), (ZQH_SHORT, [("ZQH", "ORG")], second)]
    if not full_first:
        steps.reverse()
    graphs = {}
    for i, (text, names, scope) in enumerate(steps):
        graph, _ = _resolve(resolver, text, names, source=f"s{i}", **scope)
        graphs[text] = graph
    full, short = graphs[ZQH_FULL], graphs[ZQH_SHORT]
    full_ids = {e.id for e in full.entities}
    assert [(e.name, e.aliases) for e in short.entities] == [("ZQH", ())]
    assert not full_ids & {e.id for e in short.entities}
    assert "ZQH" not in [e.name for e in full.entities]
    scope = entity_scope(second["tenant"], second.get("groups", ("*",)))
    assert short.entities[0].id == entity_id("ZQH", "ORG", scope=scope)
    # Within its own scope the acronym still resolves to the full name.
    again, _ = _resolve(resolver, ZQH_SHORT, [("ZQH", "ORG")], source="s9", **first)
    assert [e.name for e in again.entities] == ["Zorblax Quantum Holdings"]


def test_learn_keeps_only_entities_of_the_scope() -> None:
    resolver = EntityResolver()
    bravo = entity_scope("bravo", ["*"])
    zqh = Entity(
        id=entity_id("Zorblax Quantum Holdings", "ORG", scope=bravo),
        name="Zorblax Quantum Holdings",
        type="ORG",
        aliases=("ZQH",),
    )
    resolver.learn(entity_scope("acme", ["*"]), [zqh])
    graph, _ = _resolve(resolver, ZQH_SHORT, [("ZQH", "ORG")], tenant="acme")
    assert [(e.name, e.aliases) for e in graph.entities] == [("ZQH", ())]
    resolver.learn(bravo, [zqh])
    graph, _ = _resolve(resolver, ZQH_SHORT, [("ZQH", "ORG")], source="s2", tenant="bravo")
    assert [e.id for e in graph.entities] == [zqh.id]
    resolver.forget(bravo)
    assert not resolver.knows(bravo)
    graph, _ = _resolve(resolver, ZQH_SHORT, [("ZQH", "ORG")], source="s3", tenant="bravo")
    assert [e.name for e in graph.entities] == ["ZQH"]


def test_batches_embed_the_names_they_compare_once(
    embedder: SentenceTransformerEmbedder,
) -> None:
    """A batch's comparisons are embedded in one call before it resolves; a name compared
    again in a later batch is not embedded again; with a cap, the oldest vectors go but
    never the ones just embedded."""
    for kept in (32_768, 1):
        calls: list[list[str]] = []

        def embed(names: list[str]) -> Any:
            calls.append(list(names))  # noqa: B023 - read within this iteration
            return embedder.embed_sync(names)

        resolver = EntityResolver(embed=embed, names_kept=kept)
        first = _doc("Acme Holdings Group filed a report.", "a")
        resolver.resolve_batch([(first, _mentions(first, [("Acme Holdings Group", "ORG")]))])
        assert calls == []  # nothing known yet, nothing to compare
        docs = [_doc("Acme Holdings filed late.", "b"), _doc("Acme Holding Grp won.", "c")]
        resolver.resolve_batch(
            [
                (docs[0], _mentions(docs[0], [("Acme Holdings", "ORG")])),
                (docs[1], _mentions(docs[1], [("Acme Holding Grp", "ORG")])),
            ]
        )
        assert len(calls) == 1  # one call for the whole batch
        assert set(calls[0]) >= {"Acme Holdings", "Acme Holding Grp", "Acme Holdings Group"}
        assert len(resolver._vectors) == len(set(calls[0]))
        later = _doc("Acme Holding Group Ltd said so.", "d")
        calls.clear()
        resolver.resolve_batch([(later, _mentions(later, [("Acme Holding Group Ltd", "ORG")]))])
        embedded = {n for c in calls for n in c}
        assert "Acme Holding Group Ltd" in embedded
        if kept > 1:  # the names compared before are not embedded again
            assert embedded == {"Acme Holding Group Ltd"}
        else:  # the cap drops the older ones (embedded again if needed); the last stay
            assert set(resolver._vectors) == set(calls[-1])


def test_what_a_document_is_about_is_named_as_written_resolved_and_shortened() -> None:
    resolver = EntityResolver()
    _resolve(resolver, "Frank Lloyd directed it.", [("Frank Lloyd", "PERSON")], "a")
    text = "Frank William George Lloyd (1886 - 1960) was a director. He met Mary Pickford."
    doc = _doc(text, "b")
    (ext,) = _mentions(doc, [("Frank William George Lloyd", "PERSON"), ("Mary Pickford", "PERSON")])
    graph = resolver.resolve(doc, [ext.model_copy(update={"subjects": (0,)})])
    assert graph.document.about[0] == "Frank William George Lloyd"
    assert "Frank Lloyd" in graph.document.about  # the full name as usually shortened
    assert "Mary Pickford" not in graph.document.about  # named, not what it is about
    (untouched,) = _mentions(doc, [("Mary Pickford", "PERSON")])
    assert resolver.resolve(doc, [untouched]).document.about == ()
    # a generation suffix is not a surname
    doc = _doc("Adam Clayton Powell IV is a politician.", "c")
    (ext,) = _mentions(doc, [("Adam Clayton Powell IV", "PERSON")])
    about = resolver.resolve(doc, [ext.model_copy(update={"subjects": (0,)})]).document.about
    assert "Adam IV" not in about

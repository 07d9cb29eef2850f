"""Re-derive scoped entity ids for graphs stored before entity identity had a scope.

Stores written before then hold one entity node per name and type, shared by every tenant
and access list, with aliases gathered from all of them. :func:`rescope` splits such
graphs per scope (tenant and access list, :func:`graph.ids.entity_scope`): each scope gets
its own entity, named and aliased only by what that scope's documents say.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from graph.ids import EntityId, entity_id, entity_scope, normalize_name, relation_id
from graph.models import DocumentGraph, Entity, Mention, Relation

__all__ = ["ENTITY_IDS", "rescope"]

#: The entity-id layout both stores record (SQLite ``meta``, a Neo4j ``ThreadlineMeta``
#: node): ids hash the document's tenant and access list. A store holding entities but no
#: marker was written with one entity per name shared by every scope.
ENTITY_IDS = "scoped-v1"


def rescope(graphs: Sequence[DocumentGraph]) -> tuple[list[DocumentGraph], dict[EntityId, Entity]]:
    """Each document's graph with entity and relation ids of its scope, and every entity.

    Pass every stored document at once: an entity's name and aliases are gathered over
    all documents of its scope. An entity keeps its stored name when its scope's
    documents use it, else takes the surface form they use most; it keeps only the
    aliases its scope's documents state.
    """
    surfaces: dict[tuple[str, EntityId], Counter[str]] = defaultdict(Counter)
    stored: dict[EntityId, Entity] = {}
    for graph in graphs:
        scope = entity_scope(graph.document.tenant, graph.document.groups)
        stored.update((e.id, e) for e in graph.entities)
        for m in graph.mentions:
            surfaces[(scope, m.entity_id)][m.span.text] += 1
    new_ids: dict[str, dict[EntityId, EntityId]] = defaultdict(dict)
    entities: dict[EntityId, Entity] = {}
    for (scope, old_id), texts in sorted(surfaces.items()):
        ent = _scoped_entity(stored[old_id], texts, scope)
        new_ids[scope][old_id] = ent.id
        known = entities.get(ent.id)
        if known is not None:
            aliases = tuple(dict.fromkeys([*known.aliases, *ent.aliases]))
            ent = known.model_copy(update={"aliases": aliases})
        entities[ent.id] = ent
    out = []
    for graph in graphs:
        scope = entity_scope(graph.document.tenant, graph.document.groups)
        out.append(_rewrite(graph, new_ids[scope], entities))
    return out, entities


def _scoped_entity(old: Entity, texts: Counter[str], scope: str) -> Entity:
    said = {normalize_name(t) for t in texts}
    if normalize_name(old.name) in said:
        name = old.name
    else:
        name = min(texts, key=lambda t: (-texts[t], t))
    key = normalize_name(name)
    aliases: dict[str, str] = {}
    for alias in (*old.aliases, *sorted(texts)):
        norm = normalize_name(alias)
        if norm in said and norm != key:
            aliases.setdefault(norm, alias)
    return Entity(
        id=entity_id(name, old.type, scope=scope),
        name=name,
        type=old.type,
        aliases=tuple(aliases.values()),
    )


def _rewrite(
    graph: DocumentGraph, ids: dict[EntityId, EntityId], entities: dict[EntityId, Entity]
) -> DocumentGraph:
    mentions = list(
        dict.fromkeys(
            Mention(entity_id=ids[m.entity_id], span=m.span)
            for m in graph.mentions
            if m.entity_id in ids
        )
    )
    relations: dict[str, Relation] = {}
    for rel in graph.relations:
        subject, obj = ids.get(rel.subject_id), ids.get(rel.object_id)
        if subject is None or obj is None or subject == obj:
            continue
        if rel.kind == "cooccurrence" and obj < subject:
            subject, obj = obj, subject
        rid = relation_id(subject, rel.predicate, obj)
        prior = relations.get(rid)
        if prior is None:
            relations[rid] = rel.model_copy(
                update={"id": rid, "subject_id": subject, "object_id": obj}
            )
        else:
            relations[rid] = prior.model_copy(
                update={
                    "evidence": tuple(dict.fromkeys([*prior.evidence, *rel.evidence])),
                    "confidence": max(prior.confidence, rel.confidence),
                }
            )
    used = dict.fromkeys(m.entity_id for m in mentions)
    return DocumentGraph(
        document=graph.document,
        chunks=graph.chunks,
        entities=tuple(entities[e] for e in used),
        mentions=tuple(mentions),
        relations=tuple(relations.values()),
    )

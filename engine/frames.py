"""pandas tables of Threadline objects, for notebooks: ``to_dataframe(x)``.

Personal data in the tables is masked unless the caller says otherwise: by default with
the detector, or with ``redactor=await redactor_for(tl, access)`` the known values of
that caller's documents too; ``redactor=RAW`` shows them unmasked (the operator opts in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from engine.redaction import Redactor, detector_for
from engine.views import Subgraph
from graph import Entity, EntityId, Relation
from graph.provenance import Answer, Evidence
from graph.views import EntityDetail, FactView, NeighborhoodView

__all__ = ["to_dataframe"]


def to_dataframe(
    obj: Any, *, names: dict[str, str] | None = None, redactor: Redactor | None = None
) -> pd.DataFrame:
    """A table of entities, facts (named or not), evidence, an answer's claims, or the
    facts of a subgraph, neighbourhood or entity detail.

    ``names`` maps entity ids to names for fact tables (a subgraph knows its own).
    ``redactor`` masks the text cells (default: the personal data the detector finds;
    :data:`engine.redaction.RAW` masks nothing).
    """
    table = _table(obj, names)
    redact = redactor if redactor is not None else Redactor(detector=detector_for())
    if not redact.active:
        return table
    for column in table.columns:
        if column not in _ID_COLUMNS and table[column].dtype == object:
            table[column] = table[column].map(lambda v: redact.text(v) if isinstance(v, str) else v)
    return table


_ID_COLUMNS = frozenset({"id", "relation_id", "chunk_id", "document_id", "kind", "verdict"})


def _table(obj: Any, names: dict[str, str] | None) -> pd.DataFrame:
    if isinstance(obj, Answer):
        return _claims(obj)
    if isinstance(obj, NeighborhoodView | EntityDetail):
        obj = list(obj.facts)
    if isinstance(obj, Subgraph):
        known = {str(n): str(d.get("name", n)) for n, d in obj.graph.nodes(data=True)}
        facts = [
            {"relation_id": k, "subject": known.get(a, a), "predicate": d.get("predicate"),
             "object": known.get(b, b), "kind": d.get("kind"), "confidence": d.get("confidence"),
             "evidence": " | ".join(s.text for s in d.get("evidence", ()))}
            for a, b, k, d in obj.graph.edges(keys=True, data=True)
        ]  # fmt: skip
        return pd.DataFrame(facts, columns=_FACT_COLUMNS)
    items = list(obj) if isinstance(obj, Sequence) else [obj]
    if not items:
        return pd.DataFrame()
    if all(isinstance(i, Relation) for i in items):
        by_id = {EntityId(k): v for k, v in (names or {}).items()}
        items = [FactView.of(r, by_id) for r in items]
    if all(isinstance(i, Entity) for i in items):
        return pd.DataFrame(
            [
                {"id": e.id, "name": e.name, "type": e.type, "aliases": ", ".join(e.aliases)}
                for e in items
            ]
        )
    if all(isinstance(i, FactView) for i in items):
        return pd.DataFrame(
            [
                {
                    "relation_id": f.id,
                    "subject": f.subject,
                    "predicate": f.predicate,
                    "object": f.object,
                    "kind": f.kind,
                    "confidence": f.confidence,
                    "evidence": " | ".join(s.text for s in f.evidence),
                }
                for f in items
            ],
            columns=_FACT_COLUMNS,
        )
    if all(isinstance(i, Evidence) for i in items):
        return pd.DataFrame(
            [
                {
                    "chunk_id": e.chunk_id,
                    "document_id": e.document_id,
                    "score": e.score,
                    **{f"{name}_rank": sig.rank for name, sig in e.signals.items()},
                }
                for e in items
            ]
        )
    kinds = sorted({type(i).__name__ for i in items})
    raise TypeError(
        f"to_dataframe takes entities, facts, evidence, an Answer, a Subgraph or a "
        f"neighbourhood, not {kinds}"
    )


_FACT_COLUMNS = ["relation_id", "subject", "predicate", "object", "kind", "confidence", "evidence"]


def _claims(answer: Answer) -> pd.DataFrame:
    rows = []
    for n, claim in enumerate(answer.claims, 1):
        for span in claim.spans or [None]:
            rows.append(
                {
                    "claim": n,
                    "verdict": claim.verdict,
                    "text": claim.text,
                    "facts": "; ".join(
                        f"{f.subject} —{f.predicate}→ {f.object}" for f in claim.facts
                    ),
                    "document_id": span.document_id if span else None,
                    "start": span.start if span else None,
                    "end": span.end if span else None,
                    "span": span.text if span else None,
                }
            )
    return pd.DataFrame(rows)

"""Pictures of the knowledge graph for notebooks and reports, and what a document's
chunk tags say about it (:class:`DocumentPrivacy`).

:class:`Subgraph` wraps a networkx ``MultiDiGraph`` of entities and facts. In Jupyter it
shows itself as an interactive graph (vis-network through pyvis, with its JavaScript
inlined, so it works offline): nodes coloured by type, edges labelled by predicate, and
a click (or hover) on an edge shows the sentences that state the fact with their
document and offsets. :meth:`Subgraph.draw` renders a static PNG or SVG with matplotlib.
:func:`provenance_graph` turns an answer into the chain it rests on — the plan's hops or
the cited facts, then the documents — drawn as a path.

pyvis and matplotlib are the ``notebooks`` extra; they are imported when a picture is
made, never at start-up.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel, ConfigDict

from extractors.privacy import mask_spans
from graph import Chunk, ChunkId, DocumentId, EntityId, Neighborhood, Relation
from graph.provenance import Answer

__all__ = [
    "TYPE_COLOURS",
    "DocumentPrivacy",
    "InjectionFlag",
    "Subgraph",
    "document_privacy",
    "provenance_graph",
]

#: Characters of flagged text an injection flag shows.
EXCERPT_CHARS = 80


class InjectionFlag(BaseModel):
    """A span of a chunk flagged as text aimed at a model, in document offsets.

    ``excerpt`` is the flagged text, cut to :data:`EXCERPT_CHARS`, with invisible and
    control characters written as escapes and personal data masked.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    chunk_id: ChunkId
    start: int
    end: int
    rule: str
    excerpt: str


class DocumentPrivacy(BaseModel):
    """What a document's chunk tags say: personal data per type, and injection flags."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    document_id: DocumentId
    contains_pii: bool
    pii_counts: dict[str, int]
    injection_flags: tuple[InjectionFlag, ...]


def document_privacy(document_id: DocumentId, chunks: Iterable[Chunk]) -> DocumentPrivacy:
    """The privacy view of a document from its chunks (overlapping chunks count once)."""
    pii: dict[tuple[str, int, int], None] = {}
    flags: dict[tuple[str, int, int], InjectionFlag] = {}
    for chunk in sorted(chunks, key=lambda c: (c.start, c.index)):
        masked = mask_spans(
            chunk.text,
            [(t.start - chunk.start, t.end - chunk.start, t.type) for t in chunk.tagged("pii")],
        )
        for tag in chunk.tags:
            key = (tag.type, tag.start, tag.end)
            if tag.kind == "pii":
                pii[key] = None
            elif key not in flags:
                flags[key] = InjectionFlag(
                    chunk_id=chunk.id,
                    start=tag.start,
                    end=tag.end,
                    rule=tag.type,
                    excerpt=_excerpt(masked[tag.start - chunk.start : tag.end - chunk.start]),
                )
    counts: dict[str, int] = {}
    for pii_type, _, _ in pii:
        counts[pii_type] = counts.get(pii_type, 0) + 1
    return DocumentPrivacy(
        document_id=document_id,
        contains_pii=bool(counts),
        pii_counts=dict(sorted(counts.items())),
        injection_flags=tuple(sorted(flags.values(), key=lambda f: (f.start, f.end, f.rule))),
    )


def _excerpt(text: str) -> str:
    """Flagged text made safe to show: escapes for what does not print, then cut."""
    shown = "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )
    shown = " ".join(shown.split())
    return shown if len(shown) <= EXCERPT_CHARS else shown[: EXCERPT_CHARS - 1] + "…"


#: Node colour per entity type (other types are grey).
TYPE_COLOURS = {
    "PERSON": "#4e79a7",
    "ORG": "#f28e2b",
    "GPE": "#59a14f",
    "LOC": "#8cd17d",
    "DATE": "#b07aa1",
    "WORK_OF_ART": "#e15759",
    "EVENT": "#edc948",
    "NORP": "#76b7b2",
    "FAC": "#9c755f",
    "PRODUCT": "#ff9da7",
    "MISC": "#bab0ac",
    "CLAIM": "#2f2f2f",
    "DOCUMENT": "#d4a6c8",
    "QUESTION": "#111111",
}
_OTHER = "#cccccc"
_REMOTE = re.compile(
    r"<(?:link|script)\b[^>]*(?:href|src)=\"https?://[^\"]*\"[^>]*>(?:\s*</script>)?"
)


class Subgraph:
    """Entities and facts as a networkx graph, with notebook and static renderings."""

    def __init__(
        self, graph: nx.MultiDiGraph, *, centres: Sequence[str] = (), path: Sequence[str] = ()
    ) -> None:
        self.graph = graph
        self.centres = tuple(centres)
        self.path = tuple(path)  # nodes of a chain to highlight, in order

    @classmethod
    def from_neighborhood(
        cls, hood: Neighborhood, *, centres: Sequence[EntityId] = (), cooccurrence: bool = False
    ) -> Subgraph:
        """The graph of a neighbourhood (co-occurrence facts only when asked for)."""
        graph = nx.MultiDiGraph()
        facts = [f for f in hood.relations if cooccurrence or f.kind != "cooccurrence"]
        # Entities that only co-occur would float unconnected: keep the centres and the
        # ends of the facts shown.
        shown = {e for f in facts for e in (f.subject_id, f.object_id)} | set(centres)
        for entity in hood.entities:
            if entity.id in shown:
                graph.add_node(
                    entity.id, name=entity.name, type=entity.type, aliases=entity.aliases
                )
        for fact in facts:
            if fact.subject_id in graph and fact.object_id in graph:
                _add_fact(graph, fact)
        return cls(graph, centres=centres)

    def __len__(self) -> int:
        return int(self.graph.number_of_nodes())

    def __repr__(self) -> str:
        return (
            f"Subgraph({self.graph.number_of_nodes()} entities, "
            f"{self.graph.number_of_edges()} facts)"
        )

    # ------------------------------------------------------------------ interactive

    def to_html(self, *, height: int = 520) -> str:
        """A standalone HTML page with the interactive view (no network needed)."""
        from pyvis.network import Network  # noqa: PLC0415 - the notebooks extra

        net = Network(
            height=f"{height}px",
            width="100%",
            directed=True,
            cdn_resources="in_line",
            notebook=False,
        )
        net.toggle_physics(True)
        on_path = set(self.path)
        for node, data in self.graph.nodes(data=True):
            kind = str(data.get("type", ""))
            net.add_node(
                node,
                label=str(data.get("name", node)),
                title=f"{data.get('name', node)} ({kind})\n{node}",
                color=TYPE_COLOURS.get(kind, _OTHER),
                borderWidth=4 if node in self.centres or node in on_path else 1,
                shape="box" if kind in {"CLAIM", "DOCUMENT"} else "dot",
            )
        chain = set(zip(self.path, self.path[1:], strict=False))
        for a, b, data in self.graph.edges(data=True):
            net.add_edge(
                a,
                b,
                label=str(data.get("predicate", "")),
                title=_evidence_text(data.get("evidence", ())),
                color="#d62728" if (a, b) in chain else "#999999",
                width=3 if (a, b) in chain else 1,
                dashes=data.get("kind") == "cooccurrence",
            )
        page: str = net.generate_html(notebook=False)
        # pyvis inlines vis-network but still links Bootstrap from a CDN (unused by the
        # graph): drop it, so the page makes no network request at all.
        return _REMOTE.sub("", page)

    def save_html(self, path: Path) -> Path:
        """Write the interactive view to ``path``."""
        path.write_text(self.to_html(), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        page = html.escape(self.to_html(), quote=True)
        return (
            f'<iframe srcdoc="{page}" style="width:100%;height:540px;border:1px solid #ddd" '
            'sandbox="allow-scripts"></iframe>'
        )

    # ------------------------------------------------------------------ static

    def draw(self, path: Path | None = None, *, title: str | None = None, size: float = 8.0) -> Any:
        """A static picture (matplotlib ``Figure``); saved as PNG or SVG by ``path``'s suffix."""
        import matplotlib as mpl  # noqa: PLC0415 - the notebooks extra

        if path is not None:
            mpl.use("Agg")  # headless when writing files
        import matplotlib.pyplot as plt  # noqa: PLC0415

        graph = self.graph
        if self.path:
            pos = _chain_layout(graph, self.path)
            fig, ax = plt.subplots(figsize=(max(size, 2.2 * len(self.path)), size * 0.55))
        else:
            fig, ax = plt.subplots(figsize=(size * 1.4, size))
            pos = nx.spring_layout(nx.Graph(graph), seed=7, k=1.2 / max(1, len(graph)) ** 0.5)
        colours = [
            TYPE_COLOURS.get(str(d.get("type", "")), _OTHER) for _, d in graph.nodes(data=True)
        ]
        nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, node_size=900, alpha=0.9)
        chain = set(zip(self.path, self.path[1:], strict=False))
        plain = [(a, b) for a, b in graph.edges() if (a, b) not in chain]
        nx.draw_networkx_edges(
            graph,
            pos,
            ax=ax,
            edgelist=plain,
            edge_color="#999999",
            arrows=True,
            arrowsize=14,
            node_size=900,
        )
        if chain:
            nx.draw_networkx_edges(
                graph,
                pos,
                ax=ax,
                edgelist=list(chain),
                edge_color="#d62728",
                width=3,
                arrows=True,
                arrowsize=18,
                node_size=900,
            )
        labels = {n: _short(str(d.get("name", n)), 28) for n, d in graph.nodes(data=True)}
        span = max((abs(y) for _, y in pos.values()), default=1.0) or 1.0
        under = {n: (x, y - 0.13 * span) for n, (x, y) in pos.items()}
        nx.draw_networkx_labels(
            graph, under, labels=labels, ax=ax, font_size=9,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )  # fmt: skip
        edge_labels = {
            (a, b): _short(str(d.get("predicate", "")), 20) for a, b, d in graph.edges(data=True)
        }
        nx.draw_networkx_edge_labels(
            graph, pos, edge_labels=edge_labels, ax=ax, font_size=8, font_color="#444444"
        )
        types = sorted({str(d.get("type", "")) for _, d in graph.nodes(data=True)})
        for kind in types:
            ax.scatter([], [], color=TYPE_COLOURS.get(kind, _OTHER), label=kind, s=80)
        if types:
            ax.legend(loc="lower left", fontsize=8, frameon=False)
        ax.set_title(title or repr(self), fontsize=11)
        ax.margins(0.12, 0.25)
        ax.axis("off")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig


def provenance_graph(answer: Answer) -> Subgraph:
    """The chain an answer rests on, as a path to draw: question → the plan's hops (or the
    cited facts) → the answer, with each claim's documents hanging off it."""
    graph = nx.MultiDiGraph()
    graph.add_node("question", name=_short(answer.question, 60), type="QUESTION")
    path = ["question"]
    hops = [s for s in answer.plan if s.output and s.kind != "answer"]
    if hops:
        for step in hops:
            best = step.output[0]
            node = best.entity_id or f"{step.id}:{best.name}"
            graph.add_node(node, name=best.name, type="MISC" if best.entity_id else "DATE")
            relation = step.input.get("relation") or step.input.get("mention") or step.kind
            graph.add_edge(
                path[-1], node, predicate=f"{step.kind}: {relation}", kind=step.kind, evidence=()
            )
            path.append(node)
    else:
        for claim in answer.claims:
            for fact in claim.facts:
                for end, name in ((fact.subject_id, fact.subject), (fact.object_id, fact.object)):
                    graph.add_node(end, name=name, type="MISC")
                if path[-1] != fact.subject_id:
                    graph.add_edge(
                        path[-1], fact.subject_id, predicate="names", kind="link", evidence=()
                    )
                    path.append(fact.subject_id)
                graph.add_edge(
                    fact.subject_id,
                    fact.object_id,
                    predicate=fact.predicate,
                    kind="fact",
                    evidence=claim.spans,
                )
                path.append(fact.object_id)
    last = graph.nodes[path[-1]]
    if len(path) > 1 and last.get("name") == answer.answer:
        last["type"] = "CLAIM"  # the last hop found the answer itself
    else:
        graph.add_node("answer", name=_short(answer.answer, 40), type="CLAIM")
        graph.add_edge(path[-1], "answer", predicate="answer", kind="answer", evidence=())
        path.append("answer")
    for n, claim in enumerate(answer.claims, 1):
        for doc in claim.documents:
            node = f"doc:{doc.document_id}"
            graph.add_node(node, name=f"{doc.title} (v{doc.version})", type="DOCUMENT")
            graph.add_edge(
                path[-1],
                node,
                predicate=f"claim {n}: {claim.verdict}",
                kind="cites",
                evidence=claim.spans,
            )
    return Subgraph(graph, path=path)


def _add_fact(graph: nx.MultiDiGraph, fact: Relation) -> None:
    graph.add_edge(
        fact.subject_id,
        fact.object_id,
        key=fact.id,
        predicate=fact.predicate,
        kind=fact.kind,
        confidence=fact.confidence,
        evidence=fact.evidence,
    )


def _evidence_text(spans: Iterable[Any]) -> str:
    lines = []
    for span in list(spans)[:5]:
        lines.append(f"{span.document_id} [{span.start}:{span.end}]\n“{_short(span.text, 200)}”")
    return "\n\n".join(lines) or "no source span"


def _chain_layout(graph: nx.MultiDiGraph, path: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The chain left to right; everything else in a row below it, centred under the
    chain node it hangs off."""
    pos = {node: (float(i), 0.0) for i, node in enumerate(path)}
    below: dict[str, list[str]] = {}
    for node in graph.nodes:
        if node not in pos:
            anchor = next((p for p in graph.predecessors(node) if p in pos), path[-1])
            below.setdefault(anchor, []).append(node)
    for anchor, nodes in below.items():
        x, _ = pos[anchor]
        for i, node in enumerate(nodes):
            pos[node] = (x + 1.1 * (i - (len(nodes) - 1) / 2), -1.0)
    return pos


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

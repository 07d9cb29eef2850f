"""Personalized PageRank over a small weighted graph (power iteration, numpy)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

import numpy as np

__all__ = ["personalized_pagerank"]

N = TypeVar("N", bound=Hashable)


def personalized_pagerank(
    edges: Iterable[tuple[N, N, float]],
    seeds: Mapping[N, float],
    *,
    damping: float = 0.5,
    iterations: int = 30,
    tolerance: float = 1e-8,
) -> dict[N, float]:
    """Stationary probabilities of a random walk that restarts at ``seeds``.

    Edges are undirected with positive weights; ``damping`` is the probability of
    following an edge rather than jumping back to a seed (HippoRAG uses 0.5). Nodes only
    reachable from nothing keep probability 0. Dangling mass returns to the seeds.
    """
    index: dict[N, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    weights: list[float] = []
    for a, b, w in edges:
        if w <= 0 or a == b:
            continue
        ia = index.setdefault(a, len(index))
        ib = index.setdefault(b, len(index))
        rows += [ia, ib]
        cols += [ib, ia]
        weights += [w, w]
    for node in seeds:
        index.setdefault(node, len(index))
    size = len(index)
    if size == 0:
        return {}
    restart = np.zeros(size)
    for node, w in seeds.items():
        restart[index[node]] += max(w, 0.0)
    if restart.sum() <= 0:
        return dict.fromkeys(index, 0.0)
    restart /= restart.sum()
    src = np.asarray(rows, dtype=np.int64)
    dst = np.asarray(cols, dtype=np.int64)
    val = np.asarray(weights, dtype=np.float64)
    out_weight = np.bincount(src, weights=val, minlength=size)
    share = val / out_weight[src] if len(val) else val
    rank = restart.copy()
    for _ in range(iterations):
        spread = np.bincount(dst, weights=rank[src] * share, minlength=size)
        dangling = rank[out_weight == 0].sum()
        nxt = (1 - damping) * restart + damping * (spread + dangling * restart)
        if np.abs(nxt - rank).sum() < tolerance:
            rank = nxt
            break
        rank = nxt
    return {node: float(rank[i]) for node, i in index.items()}

"""The API's endpoints, one router per area, all under ``/v1`` (``/metrics`` aside)."""

from __future__ import annotations

from engine.api.routes import documents, graph, keys, operations, questions, verify

__all__ = ["ROUTERS"]

#: Every router, in the order the OpenAPI document lists them.
ROUTERS = (
    documents.router,
    questions.router,
    verify.router,
    graph.router,
    keys.router,
    operations.router,
)

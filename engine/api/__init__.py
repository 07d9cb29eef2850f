"""The analyst query API: ``threadline serve``, FastAPI on uvicorn, versioned under ``/v1``.

Every request names an API key (``Authorization: Bearer tl_...`` or ``X-API-Key``) that
maps to a tenant and groups; every read goes through the browse layer or the pipelines
with that access, and the stores filter inside their queries, so another tenant's
documents, chunks, entities and facts do not exist for the caller on any endpoint.
Errors are JSON ``{error, message, detail}`` and never carry a stack trace. Ingests,
deletes, key operations and every read (asks, searches, graph, documents, jobs) are
appended to the hash-chained audit log, as ids and counts.

Modules: :mod:`~engine.api.app` (the app and its lifespan), :mod:`~engine.api.errors`
(the error table), :mod:`~engine.api.schemas` (request and response models),
:mod:`~engine.api.limits` (rate, concurrency and body limits), :mod:`~engine.api.jobs`
(ingest jobs), :mod:`~engine.api.deps` (the service and the calling key) and
:mod:`~engine.api.routes` (the endpoints).
"""

from __future__ import annotations

from engine.api.app import create_app

__all__ = ["create_app"]

"""Composition and surfaces: settings, wiring of concrete backends, ingestion, the CLI.

Contract: the only package that reads settings and constructs concrete stores and
clients. Everything below it receives collaborators as arguments.
"""

from engine.ingest import Ingestor, IngestReport
from engine.readers import SUPPORTED_SUFFIXES, SourceDocument, read_paths
from engine.settings import Settings
from engine.threadline import Stats, Threadline

__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestReport",
    "Ingestor",
    "Settings",
    "SourceDocument",
    "Stats",
    "Threadline",
    "read_paths",
]

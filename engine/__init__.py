"""Composition and surfaces: settings, wiring of concrete backends, the ingestion and query
pipelines, the browse layer, the HTTP API, the CLI, agent tools.

Contract: the only package that reads settings and constructs concrete stores and
clients. Everything below it receives collaborators as arguments. Every surface reads the
graph through :class:`GraphBrowser` and answers through :class:`QueryPipeline`.
"""

from engine.browse import GraphBrowser
from engine.ingest import Ingestor, IngestReport
from engine.query import AskEvent, QueryPipeline
from engine.readers import SUPPORTED_SUFFIXES, SourceDocument, read_paths
from engine.settings import Settings
from engine.threadline import Stats, Threadline
from engine.tools import ThreadlineToolbox, openai_tools

__all__ = [
    "SUPPORTED_SUFFIXES",
    "AskEvent",
    "GraphBrowser",
    "IngestReport",
    "Ingestor",
    "QueryPipeline",
    "Settings",
    "SourceDocument",
    "Stats",
    "Threadline",
    "ThreadlineToolbox",
    "openai_tools",
    "read_paths",
]

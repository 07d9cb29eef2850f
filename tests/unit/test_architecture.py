"""The layering rule and the public surface of each package."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_layers_point_down_only() -> None:
    """graph <- extractors <- agents <- engine, checked by import-linter's contract."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint_imports)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


#: Each package's public names, pinned: adding or removing one is a deliberate change to
#: this list (and to the docs), never a side effect.
PUBLIC_NAMES: dict[str, list[str]] = {
    "graph": [
        "Access",
        "Answer",
        "Chunk",
        "ChunkId",
        "Claim",
        "ConfigError",
        "DeleteReport",
        "Document",
        "DocumentGraph",
        "DocumentId",
        "Entity",
        "EntityDetail",
        "EntityId",
        "Evidence",
        "ExtractionError",
        "FactView",
        "GraphPath",
        "GraphStore",
        "InputError",
        "LLMError",
        "Mention",
        "ModelReplyError",
        "Neighborhood",
        "NeighborhoodView",
        "NotFoundError",
        "PUBLIC_GROUP",
        "PathView",
        "PermissionDeniedError",
        "PlanningError",
        "ProvenanceError",
        "QuotaExceededError",
        "Relation",
        "RelationId",
        "RelationKind",
        "RetryableLLMError",
        "Section",
        "SentenceVector",
        "Source",
        "Span",
        "SparseVector",
        "StoreCorruptedError",
        "StoreError",
        "StoreStats",
        "StoreUnavailableError",
        "Tag",
        "TagKind",
        "ThreadlineError",
        "VectorHit",
        "VectorIndex",
        "VectorPoint",
        "bounded_neighborhood",
        "chunk_id",
        "content_hash",
        "document_id",
        "entity_id",
        "entity_scope",
        "fact_rank",
        "normalize_name",
        "personalized_pagerank",
        "rank_entities",
        "relation_id",
        "shortest_paths",
        "title_key",
    ],
    "extractors": [
        "Bm25Encoder",
        "ChatModel",
        "ChunkExtraction",
        "Completion",
        "DEFAULT_LABELS",
        "DIRECT_IDENTIFIERS",
        "EmbedNames",
        "Embedder",
        "EntityResolver",
        "INJECTION_TYPES",
        "Message",
        "ModelReplyError",
        "PII_TYPES",
        "PiiDetector",
        "Precision",
        "RawMention",
        "RawRelation",
        "ReplyFormat",
        "SentenceChunker",
        "SentenceTransformerEmbedder",
        "SpacyEntityExtractor",
        "SpanEmbedder",
        "ToolCall",
        "Usage",
        "ValueMasker",
        "ask",
        "find_injections",
        "mask_spans",
        "mask_value",
        "packaged_minilm_path",
        "parse_json",
        "reply_usage",
        "salvage_json",
        "spans_embedded_alone",
        "split_sentences",
        "strict_schema",
        "tokenize",
        "type_family",
    ],
    "agents": [
        "AnswerCheck",
        "AnswerChecker",
        "Answerer",
        "AskResult",
        "Binding",
        "ChunkHit",
        "Draft",
        "EntityResult",
        "ExecutorLimits",
        "ExtractiveAnswerer",
        "FactsResult",
        "FallbackAnswerer",
        "FallbackPlanner",
        "HybridRetriever",
        "Mode",
        "ModelSynthesizer",
        "NOT_FOUND",
        "PathsResult",
        "Plan",
        "PlanExecutor",
        "PlanTrace",
        "Planner",
        "ProvenanceValidator",
        "QuestionAnalysis",
        "Report",
        "ResearchAgent",
        "ResearchBudget",
        "Retrieval",
        "RetrievalWeights",
        "RulePlanner",
        "SearchResult",
        "Step",
        "StepTrace",
        "ToolError",
        "ToolResult",
        "Toolbox",
        "analyze_question",
        "draft",
        "plan_from_parse",
        "plan_json_schema",
    ],
    "engine": [
        "AskEvent",
        "GraphBrowser",
        "IngestReport",
        "Ingestor",
        "QueryPipeline",
        "SUPPORTED_SUFFIXES",
        "Settings",
        "SourceDocument",
        "Stats",
        "Threadline",
        "ThreadlineToolbox",
        "openai_tools",
        "read_paths",
    ],
}


@pytest.mark.parametrize("package", sorted(PUBLIC_NAMES))
def test_public_names_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == PUBLIC_NAMES[package]
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"


def test_main_output_types_are_public() -> None:
    import graph

    for name in ("Answer", "Claim", "Evidence", "FactView", "PathView", "ModelReplyError"):
        assert name in graph.__all__
    assert issubclass(graph.ModelReplyError, graph.LLMError)


def test_no_module_over_700_lines() -> None:
    long = {}
    for package in ("graph", "extractors", "agents", "engine"):
        for path in (ROOT / package).rglob("*.py"):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > 700:
                long[str(path.relative_to(ROOT))] = lines
    assert not long, f"split these modules: {long}"


def test_api_routes_read_the_graph_only_through_the_browser_or_pipeline() -> None:
    for path in (ROOT / "engine" / "api" / "routes").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "tl.graph" not in text, path
        assert "GraphStore" not in text, path
        assert ".graph." not in text, path


def test_error_tree_has_one_root() -> None:
    import graph.errors as errors

    classes = [getattr(errors, n) for n in errors.__all__]
    assert all(issubclass(c, errors.ThreadlineError) for c in classes)
    assert issubclass(errors.RetryableLLMError, errors.LLMError)
    assert issubclass(errors.StoreUnavailableError, errors.StoreError)


def test_lower_layers_never_read_settings() -> None:
    for package in ("graph", "extractors", "agents"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "pydantic_settings" not in text, path
            assert "getenv(" not in text, path
            assert "environ.get(" not in text, path
            assert "environ[" not in text, path

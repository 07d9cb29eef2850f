"""Text to knowledge: chunking, NER and relation extraction, entity resolution, embedders.

Contract: everything here is CPU-bound and synchronous unless it says otherwise (callers
run it in worker threads); collaborators arrive as constructor arguments; nothing here
reads settings or downloads models. Imports only :mod:`graph`. The chat-model seam
(:mod:`extractors.chat`) is how extractors and agents talk to a model: every prompt
(:mod:`extractors.prompts`) declares its reply model, and :func:`ask` sends its schema and
parses the reply into it.
"""

from extractors.chat import (
    ChatModel,
    Completion,
    Message,
    ModelReplyError,
    ReplyFormat,
    ToolCall,
    Usage,
    ask,
    parse_json,
    reply_usage,
    salvage_json,
    strict_schema,
)
from extractors.chunker import SentenceChunker, split_sentences
from extractors.embedder import (
    Embedder,
    Precision,
    SentenceTransformerEmbedder,
    SpanEmbedder,
    packaged_minilm_path,
    spans_embedded_alone,
)
from extractors.injection import INJECTION_TYPES, find_injections
from extractors.privacy import (
    DIRECT_IDENTIFIERS,
    PII_TYPES,
    PiiDetector,
    ValueMasker,
    mask_spans,
    mask_value,
)
from extractors.resolution import EmbedNames, EntityResolver, type_family
from extractors.spacy_extractor import DEFAULT_LABELS, SpacyEntityExtractor
from extractors.sparse import Bm25Encoder, tokenize
from extractors.types import ChunkExtraction, RawMention, RawRelation

__all__ = [
    "DEFAULT_LABELS",
    "DIRECT_IDENTIFIERS",
    "INJECTION_TYPES",
    "PII_TYPES",
    "Bm25Encoder",
    "ChatModel",
    "ChunkExtraction",
    "Completion",
    "EmbedNames",
    "Embedder",
    "EntityResolver",
    "Message",
    "ModelReplyError",
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
]

"""Text to knowledge: chunking, NER and relation extraction, entity resolution, embedders.

Contract: everything here is CPU-bound and synchronous unless it says otherwise (callers
run it in worker threads); collaborators arrive as constructor arguments; nothing here
reads settings or downloads models. Imports only :mod:`graph`.
"""

from extractors.chunker import SentenceChunker, split_sentences
from extractors.embedder import Embedder, SentenceTransformerEmbedder, packaged_minilm_path
from extractors.resolution import EmbedNames, EntityResolver, type_family
from extractors.spacy_extractor import DEFAULT_LABELS, SpacyEntityExtractor
from extractors.sparse import Bm25Encoder, tokenize
from extractors.types import ChunkExtraction, RawMention, RawRelation

__all__ = [
    "DEFAULT_LABELS",
    "Bm25Encoder",
    "ChunkExtraction",
    "EmbedNames",
    "Embedder",
    "EntityResolver",
    "RawMention",
    "RawRelation",
    "SentenceChunker",
    "SentenceTransformerEmbedder",
    "SpacyEntityExtractor",
    "packaged_minilm_path",
    "split_sentences",
    "tokenize",
    "type_family",
]

"""Question to evidence to answer.

Contract: the retriever, the answerer and the provenance validator take their stores,
embedder and NLP pipeline as arguments and never read settings. Imports :mod:`graph`
and :mod:`extractors` only.
"""

from agents.answering import NOT_FOUND, Draft, ExtractiveAnswerer
from agents.ppr import personalized_pagerank
from agents.question import QuestionAnalysis, analyze_question
from agents.retrieval import HybridRetriever, Mode, Retrieval, RetrievalWeights
from agents.validation import ProvenanceValidator

__all__ = [
    "NOT_FOUND",
    "Draft",
    "ExtractiveAnswerer",
    "HybridRetriever",
    "Mode",
    "ProvenanceValidator",
    "QuestionAnalysis",
    "Retrieval",
    "RetrievalWeights",
    "analyze_question",
    "personalized_pagerank",
]

"""Question to evidence to answer.

Contract: the retriever, the answerer and the provenance validator take their stores,
embedder and NLP pipeline as arguments and never read settings. Imports :mod:`graph`
and :mod:`extractors` only.
"""

from agents.answerer import NOT_FOUND, Answerer, Draft, FallbackAnswerer, draft
from agents.answering import ExtractiveAnswerer
from agents.executor import ExecutorLimits, PlanExecutor
from agents.plan import Binding, Plan, Planner, PlanTrace, Step, StepTrace, plan_json_schema
from agents.planner import FallbackPlanner, RulePlanner, plan_from_parse
from agents.question import QuestionAnalysis, analyze_question
from agents.retrieval import HybridRetriever, Mode, Retrieval, RetrievalWeights
from agents.synthesis import ModelSynthesizer
from agents.validation import ProvenanceValidator

__all__ = [
    "NOT_FOUND",
    "Answerer",
    "Binding",
    "Draft",
    "ExecutorLimits",
    "ExtractiveAnswerer",
    "FallbackAnswerer",
    "FallbackPlanner",
    "HybridRetriever",
    "Mode",
    "ModelSynthesizer",
    "Plan",
    "PlanExecutor",
    "PlanTrace",
    "Planner",
    "ProvenanceValidator",
    "QuestionAnalysis",
    "Retrieval",
    "RetrievalWeights",
    "RulePlanner",
    "Step",
    "StepTrace",
    "analyze_question",
    "draft",
    "plan_from_parse",
    "plan_json_schema",
]

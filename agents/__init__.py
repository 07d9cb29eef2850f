"""Question to evidence to answer.

Contract: the retriever, the answerers (:class:`Answerer`: extractive or model, one
:class:`Draft` type), the provenance validator and the research agent take their stores,
models and NLP pipeline as arguments and never read settings. Imports :mod:`graph`
and :mod:`extractors` only.
"""

from agents.answer_check import AnswerCheck, AnswerChecker
from agents.answerer import NOT_FOUND, Answerer, Draft, FallbackAnswerer, draft
from agents.answering import ExtractiveAnswerer
from agents.executor import ExecutorLimits, PlanExecutor
from agents.plan import Binding, Plan, Planner, PlanTrace, Step, StepTrace, plan_json_schema
from agents.planner import FallbackPlanner, RulePlanner, plan_from_parse
from agents.question import QuestionAnalysis, analyze_question
from agents.research import Report, ResearchAgent, ResearchBudget
from agents.retrieval import HybridRetriever, Mode, Retrieval, RetrievalWeights
from agents.synthesis import ModelSynthesizer
from agents.toolbox import (
    AskResult,
    ChunkHit,
    EntityResult,
    FactsResult,
    PathsResult,
    SearchResult,
    Toolbox,
    ToolError,
    ToolResult,
)
from agents.validation import ProvenanceValidator

__all__ = [
    "NOT_FOUND",
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
]

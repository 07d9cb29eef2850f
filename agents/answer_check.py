"""Whether an answer follows from its supported claims (the answer's verdict).

Claims are validated one by one (:class:`~agents.validation.ProvenanceValidator`); this
module checks the answer line itself against the claims that came out ``supported``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from extractors import SpacyEntityExtractor
from graph import normalize_name
from graph.provenance import Claim, Verdict

__all__ = ["AnswerCheck", "AnswerChecker"]


@dataclass(frozen=True, slots=True)
class AnswerCheck:
    """An answer's verdict (``None``: there was no answer to check) and why."""

    verdict: Verdict | None
    reason: str


class AnswerChecker:
    """Checks an answer against the question and the validated claims."""

    def __init__(self, *, extractor: SpacyEntityExtractor) -> None:
        self._extractor = extractor

    def check(
        self, question: str | None, answer: str | None, claims: Sequence[Claim]
    ) -> AnswerCheck:
        """The answer's verdict given the claims (already validated)."""
        if answer is None or not answer.strip():
            return AnswerCheck(None, "there is no answer to check")
        key = normalize_name(answer)
        for claim in claims:
            if claim.verdict != "supported":
                continue
            stated = [claim.text, *(s.text for s in claim.spans)]
            if any(key in normalize_name(t) for t in stated):
                return AnswerCheck("supported", "a supported claim states the answer")
        return AnswerCheck("unsupported", "no supported claim states the answer")

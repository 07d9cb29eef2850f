"""The Threadline exception tree.

Every error Threadline raises on purpose derives from :class:`ThreadlineError`::

    ThreadlineError
    ├── ConfigError            a setting is missing, malformed or inconsistent
    ├── InputError             a document or request cannot be accepted as given
    ├── StoreError             a store misbehaved
    │   ├── StoreUnavailableError   cannot be reached or opened (locked, down, auth)
    │   └── StoreCorruptedError     stored data does not match what Threadline wrote
    ├── NotFoundError          an id names nothing the caller may see
    ├── ExtractionError        the NLP pipeline or embedder failed
    ├── PlanningError          a question could not be turned into a plan
    ├── LLMError               a model server call failed
    │   ├── RetryableLLMError       ... in a way worth retrying (timeouts, 429, 5xx)
    │   └── ModelReplyError         the model answered, but not with the JSON asked for
    ├── ProvenanceError        a provenance chain failed validation
    ├── PermissionDeniedError  the caller may not do this
    └── QuotaExceededError     the caller spent its token or question quota

Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ExtractionError",
    "InputError",
    "LLMError",
    "ModelReplyError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlanningError",
    "ProvenanceError",
    "QuotaExceededError",
    "RetryableLLMError",
    "StoreCorruptedError",
    "StoreError",
    "StoreUnavailableError",
    "ThreadlineError",
]


class ThreadlineError(Exception):
    """Root of every error Threadline raises on purpose."""


class ConfigError(ThreadlineError):
    """A setting is missing, malformed or inconsistent."""


class InputError(ThreadlineError):
    """Input (a file, a record, a request field) cannot be accepted as given.

    Attributes:
        source: the file or request part the problem is in, when known.
        line: the 1-based line number inside ``source``, when known.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{message}")
        self.source = source
        self.line = line


class StoreError(ThreadlineError):
    """A graph store or vector index failed."""


class StoreUnavailableError(StoreError):
    """A store cannot be reached or opened (server down, bad credentials, locked directory)."""


class StoreCorruptedError(StoreError):
    """Stored data does not match what Threadline wrote."""


class NotFoundError(ThreadlineError):
    """An id names nothing that exists for the caller."""


class ExtractionError(ThreadlineError):
    """The NLP pipeline or the embedder failed or could not be loaded."""


class PlanningError(ThreadlineError):
    """A question could not be decomposed into a plan."""


class LLMError(ThreadlineError):
    """A call to a model server failed."""


class RetryableLLMError(LLMError):
    """A model server call failed in a way that is worth retrying.

    Attributes:
        retry_after: seconds the server asked the caller to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelReplyError(LLMError):
    """The model answered, but not with what was asked: not JSON, or JSON that does not fit
    the reply's schema. (Unlike a failed call, asking again may help.)

    Attributes:
        reply: the text the model wrote, when known (to quote it back when asking again).
        completion: the whole reply as the chat client returned it (with its token
            usage), when known.
    """

    def __init__(self, message: str, *, reply: str | None = None, completion: object = None):
        super().__init__(message)
        self.reply = reply
        self.completion = completion


class ProvenanceError(ThreadlineError):
    """A provenance chain does not hold against the graph or the source text."""


class PermissionDeniedError(ThreadlineError):
    """The caller is not allowed to do this."""


class QuotaExceededError(ThreadlineError):
    """A tenant or key has spent its quota (tokens per day or month, questions per day).

    Attributes:
        scope: ``"tenant"`` or ``"key"``.
        limit: the quota's name (``tokens_per_day``, ``tokens_per_month``, ``asks_per_day``).
        resets_at: when the quota's period ends (an ISO 8601 UTC timestamp).
        retry_after: seconds until then.
    """

    def __init__(
        self, message: str, *, scope: str, limit: str, resets_at: str, retry_after: float
    ) -> None:
        super().__init__(message)
        self.scope = scope
        self.limit = limit
        self.resets_at = resets_at
        self.retry_after = retry_after

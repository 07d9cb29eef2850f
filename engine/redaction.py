"""Redaction: personal data masked in everything a caller without the ``pii`` permission
reads, wherever it leaves Threadline (API, CLI, notebook tables, agent tools, MCP).

A :class:`Redactor` serves one caller. It masks

- every value the store's ``pii`` tags cover in the chunks the caller may read
  (:meth:`graph.GraphStore.pii_values`), wherever it occurs: in chunk and document text,
  spans, claims, entity names and aliases, community summaries; and
- whatever the detector finds in any text (model answers, questions and claims echoed
  back, titles), so text that was never stored is covered too.

Only the caller's own scope feeds the masks: a value of another tenant is masked for a
caller only when the detector finds it in the caller's own text, so masking reveals
nothing across walls. Masks keep the length of what they hide (``[EMAIL]*******``): every
offset a result carries still points at the same place, and the caller sees where each
redaction sits and of what type it was. Validation reads the stored text: redaction is
applied to results only, after they were validated.

Callers without ``pii`` also have their own input masked before it is used (questions,
search queries, entity names, claims to verify), so a guessed value cannot be confirmed by
asking about it. Redactors are cached per access scope and rebuilt when that scope's
documents change. :data:`RAW` is the redactor of callers holding ``pii``.

Where nothing is redacted: an API key with ``pii`` (admin keys hold every permission);
``threadline`` read commands given ``--permission pii`` (the local operator opts in,
command by command); ``to_dataframe(..., redactor=RAW)``. The API has no unauthenticated
mode: every request names a key, so there is no mode in which text leaves unmasked by
default.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from extractors.privacy import (
    DIRECT_IDENTIFIERS,
    PiiDetector,
    ValueMasker,
    identifier_shapes,
    mask_spans,
)
from graph import Access, Entity

if TYPE_CHECKING:
    from engine.threadline import Threadline

__all__ = [
    "RAW",
    "Redactor",
    "StreamMasker",
    "detector_for",
    "redactor_for",
    "visible_entities",
]

T = TypeVar("T")

# Fields that hold ids, codes and names of things, never free text: left as they are
# (an id must keep working, and the detector could take a hex run for a number).
_KEEP = frozenset(
    {
        "id",
        "ids",
        "kind",
        "type",
        "types",
        "verdict",
        "answer_verdict",
        "mode",
        "method",
        "tenant",
        "groups",
        "content_hash",
        "model",
        "prompts",
        "status",
        "synthesis",
        "home",
        "depends_on",
        "evidence_ids",
    }
)
_ID_FORM = r"(?:doc|chk|ent|rel|com)_[0-9a-f]{8,64}"
_ID = re.compile(rf"^{_ID_FORM}$")
_IDS = re.compile(rf"\b{_ID_FORM}\b")


def _in_id(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies inside a Threadline id (ids are not personal data)."""
    return any(m.start() <= start and end <= m.end() for m in _IDS.finditer(text))


_MEMO = 4096


def _kept(name: str) -> bool:
    return name in _KEEP or name.endswith(("_id", "_ids", "_sha256", "_hash"))


_DETECTORS: dict[tuple[frozenset[str], float], PiiDetector] = {}
_DETECTORS_LOCK = threading.Lock()


def detector_for(types: Iterable[str] = DIRECT_IDENTIFIERS, threshold: float = 0.4) -> PiiDetector:
    """The process's detector for ``types`` (tokenizer only; loaded on first use)."""
    key = (frozenset(types), threshold)
    with _DETECTORS_LOCK:
        found = _DETECTORS.get(key)
        if found is None:
            found = _DETECTORS[key] = PiiDetector(key[0], threshold=threshold)
        return found


class Redactor:
    """Masks personal data in what one caller reads; see the module docstring.

    ``masker`` masks the known values of the caller's scope, ``detector`` finds the rest.
    A redactor with neither (:data:`RAW`) returns everything as it is. Thread-safe.
    """

    def __init__(
        self, *, masker: ValueMasker | None = None, detector: PiiDetector | None = None
    ) -> None:
        self._masker = masker if masker is not None and len(masker) else None
        self._detector = detector if detector is not None and detector.types else None
        self._memo: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether this redactor masks anything at all."""
        return self._masker is not None or self._detector is not None

    def text(self, value: str) -> str:
        """``value`` with every known and detected personal-data value masked."""
        if not self.active or not value or _ID.match(value):
            return value
        with self._lock:
            found = self._memo.get(value)
            if found is not None:
                self._memo.move_to_end(value)
                return found
        masked = self._masker(value) if self._masker is not None else value
        if self._detector is not None:
            spans = [(t.start, t.end, t.type) for t in self._detector.find(masked)]
            masked = mask_spans(masked, spans) if spans else masked
        with self._lock:
            self._memo[value] = masked
            while len(self._memo) > _MEMO:
                self._memo.popitem(last=False)
        return masked

    def input(self, value: str) -> str:
        """What a caller sends (a question, a query, a name), masked by shape alone: every
        substring shaped like a direct identifier and whatever the detector finds, never
        by the scope's known values. Masking a guess only when it is right would confirm
        it; masking every identifier-shaped string confirms nothing."""
        if not self.active or not value or _ID.match(value):
            return value
        spans = [(a, b, "PII") for a, b in identifier_shapes(value) if not _in_id(value, a, b)]
        masked = mask_spans(value, spans) if spans else value
        if self._detector is not None:
            found = [(t.start, t.end, t.type) for t in self._detector.find(masked)]
            masked = mask_spans(masked, found) if found else masked
        return masked

    def scrub_input(self, obj: T) -> T:
        """:meth:`input` over every text of ``obj`` (tool arguments, items to verify)."""
        if not self.active:
            return obj
        return _InputMasker(self).walk(obj)  # type: ignore[no-any-return]

    async def scrubbed_input(self, obj: T) -> T:
        """:meth:`scrub_input` in a worker thread."""
        if not self.active:
            return obj
        return await asyncio.to_thread(self.scrub_input, obj)

    def hides(self, value: str) -> bool:
        """Whether ``value`` holds personal data this redactor masks."""
        return self.text(value) != value

    def scrub(self, obj: T, *, seen: dict[str, str] | None = None) -> T:
        """A copy of ``obj`` (a pydantic model, dataclass, dict, list, tuple or string,
        nested) with every text masked; ids and codes are kept. Models are copied without
        re-validation: masks keep lengths, so offsets and their checks still hold.

        ``seen`` (optional) collects ``masked -> original`` for each string changed.
        """
        if not self.active:
            return obj
        return self._walk(obj, seen)  # type: ignore[no-any-return]  # same shape as obj

    async def scrubbed(self, obj: T) -> T:
        """:meth:`scrub` in a worker thread (detection is CPU work)."""
        if not self.active:
            return obj
        return await asyncio.to_thread(self.scrub, obj)

    def _walk(self, obj: Any, seen: dict[str, str] | None) -> Any:
        if isinstance(obj, str):
            masked = self.text(obj)
            if seen is not None and masked != obj:
                seen[masked] = obj
            return masked
        if isinstance(obj, BaseModel):
            updates = self._fields(obj, type(obj).model_fields, seen)
            return obj.model_copy(update=updates) if updates else obj
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            names = [f.name for f in dataclasses.fields(obj) if f.init]
            changes = self._fields(obj, names, seen)
            return dataclasses.replace(obj, **changes) if changes else obj
        if isinstance(obj, dict):
            items = {
                k: v if isinstance(k, str) and _kept(k) else self._walk(v, seen)
                for k, v in obj.items()
            }
            return obj if all(items[k] is v for k, v in obj.items()) else items
        if isinstance(obj, list | tuple):
            return self._items(obj, seen)
        return obj

    def _items(self, obj: list[Any] | tuple[Any, ...], seen: dict[str, str] | None) -> Any:
        walked = [self._walk(v, seen) for v in obj]
        if all(a is b for a, b in zip(walked, obj, strict=True)):
            return obj
        if isinstance(obj, list):
            return walked
        return type(obj)(*walked) if hasattr(obj, "_fields") else type(obj)(walked)

    def _fields(
        self, obj: Any, names: Iterable[str], seen: dict[str, str] | None
    ) -> dict[str, Any]:
        """The fields of ``obj`` that masking changed, by name."""
        changed = {}
        for name in names:
            if _kept(name):
                continue
            value = getattr(obj, name)
            walked = self._walk(value, seen)
            if walked is not value:
                changed[name] = walked
        return changed

    def restore(self, obj: T, seen: dict[str, str]) -> T:
        """``obj`` with strings masked earlier (recorded in ``seen``) put back, for
        validating against the stored text what a caller was shown masked."""
        return _Restorer(seen).walk(obj)  # type: ignore[no-any-return]


class _Restorer(Redactor):
    def __init__(self, seen: dict[str, str]) -> None:
        super().__init__()
        self._seen = seen

    @property
    def active(self) -> bool:
        return True

    def text(self, value: str) -> str:
        return self._seen.get(value, value)

    def walk(self, obj: Any) -> Any:
        return self._walk(obj, None)


class _InputMasker(Redactor):
    def __init__(self, outer: Redactor) -> None:
        super().__init__()
        self._outer = outer

    @property
    def active(self) -> bool:
        return True

    def text(self, value: str) -> str:
        return self._outer.input(value)

    def walk(self, obj: Any) -> Any:
        return self._walk(obj, None)


#: The redactor of callers holding the ``pii`` permission: nothing is masked.
RAW = Redactor()


class StreamMasker:
    """Masks text that arrives in pieces (a model's tokens): pieces are held back until a
    line ends (a value never spans lines), then the line goes out masked."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._held = ""

    def feed(self, piece: str) -> str:
        """What may go out now of the text so far (may be empty)."""
        if not self._redactor.active:
            return piece
        self._held += piece
        cut = self._held.rfind("\n") + 1
        ready, self._held = self._held[:cut], self._held[cut:]
        return self._redactor.text(ready) if ready else ""

    def flush(self) -> str:
        """The rest, masked."""
        rest, self._held = self._held, ""
        return self._redactor.text(rest) if rest else ""


def visible_entities(found: Sequence[Entity], query: str, redactor: Redactor) -> list[Entity]:
    """``found`` masked, keeping only those whose masked name or alias still contains
    ``query``: a search cannot confirm a hidden value one character at a time."""
    shown = [redactor.scrub(e) for e in found]
    if not redactor.active or not query.strip():
        return shown
    wanted = query.strip().casefold()
    return [e for e in shown if any(wanted in n.casefold() for n in (e.name, *e.aliases))]


class _Scopes:
    """Redactors of one Threadline, per access scope and corpus version (least recently
    used dropped beyond a bound)."""

    def __init__(self) -> None:
        self.built: OrderedDict[tuple[Access, int], Redactor] = OrderedDict()


_BY_ENGINE: weakref.WeakKeyDictionary[Threadline, _Scopes] = weakref.WeakKeyDictionary()
_SCOPES_MAX = 256


async def redactor_for(tl: Threadline, access: Access, *, pii: bool = False) -> Redactor:
    """The redactor of a caller reading as ``access``: :data:`RAW` when it holds ``pii``,
    else masks over the personal data of the documents ``access`` may read plus the
    detector, both of the redacted types (``THREADLINE_PRIVACY__REDACT_TYPES``)."""
    if pii:
        return RAW
    privacy = tl.settings.privacy
    types = privacy.redacted
    if not types:
        return RAW
    scopes = _BY_ENGINE.setdefault(tl, _Scopes())
    key = (access, tl._asks.version(access.tenant))  # the corpus version
    found = scopes.built.get(key)
    if found is not None:
        scopes.built.move_to_end(key)
        return found
    values = await tl.graph.pii_values(access, types)
    # Presidio loads on the first text with a candidate (the server starts loading it in
    # the background at start-up: engine.api.app), so a read with nothing to find never
    # pays for it.
    detector = detector_for(types & DIRECT_IDENTIFIERS, privacy.pii_threshold)
    built = Redactor(masker=ValueMasker(values), detector=detector)
    scopes.built[key] = built
    # Versions of a scope only grow: drop the older ones, and the least used beyond a bound.
    for old in [k for k in scopes.built if k[0] == access and k != key]:
        del scopes.built[old]
    while len(scopes.built) > _SCOPES_MAX:
        scopes.built.popitem(last=False)
    return built

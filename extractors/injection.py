"""Text aimed at a model: prompt-injection detection for chunks and questions.

:func:`find_injections` flags spans of a text that read as instructions to a model rather
than as content: orders to ignore or replace instructions (``override``), chat-format role
and system markers (``role_marker``), tool-call syntax (``tool_call``), markup that hides
text from a human reader (``hidden_html``), invisible and direction-changing characters
(``invisible``), requests to reveal a prompt or secrets (``prompt_leak``) and text that
speaks to an AI reader (``addressed_to_model``). Each flag is a :class:`graph.Tag` of kind
``"injection"`` whose ``type`` names the rule.

The rules are precise rather than broad: ordinary prose ("ignore the noise", "the system
administrator", "acts as a buffer", JSON data) is not flagged; the false-positive rate over
the shared benchmark corpora is measured by the privacy tests. Matching runs on a
normalised copy of the text (invisible characters dropped, full-width and look-alike
letters folded, ``&lt;``-style escaped brackets decoded) so ``ign\u200bore previous
instructions`` is still an override, while every tag's offsets index the original text. The
rules about wording also run on a folded copy (leet digits read as letters, spaced-out
letters joined, hyphen-broken words mended), HTML comments holding orders to a model are
``hidden_html``, and a base64 run that decodes to flagged text is flagged with the decoded
text's rule. The rules themselves are in :mod:`extractors.injection_rules`.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable, Sequence

from extractors.injection_rules import COMMENT_ORDER, COMMENT_READER, LOOKALIKE, RULES
from graph import Tag

__all__ = ["INJECTION_TYPES", "find_injections"]

_F = re.IGNORECASE

#: The rules, each a tag ``type``.
INJECTION_TYPES = (
    "override",
    "role_marker",
    "tool_call",
    "hidden_html",
    "invisible",
    "prompt_leak",
    "addressed_to_model",
)

# Characters that render as nothing or change the reading order. Zero-width joiners occur
# in emoji sequences and some scripts, so only runs of them count (see _INVISIBLE_RUN).
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e"
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DROP = frozenset(_ZERO_WIDTH + _BIDI + "\u00ad\u200e\u200f")


def _is_tag_char(ch: str) -> bool:
    return 0xE0000 <= ord(ch) <= 0xE007F


def _is_dropped(ch: str) -> bool:
    return ch in _DROP or _is_tag_char(ch) or 0xE0100 <= ord(ch) <= 0xE01EF


# Runs of invisible characters; a single tag character or bidi override is enough.
_INVISIBLE_RUN = re.compile(
    "[\U000e0000-\U000e007f]+|[\u202a-\u202e\u2066-\u2069]+|"
    "[\U000e0100-\U000e01ef]{2,}|[\u2061-\u2064]+|"
    "[" + _ZERO_WIDTH + "\u00ad]{2,}|"
    r"(?<=[A-Za-z])[\u200b\u2060\ufeff](?=[A-Za-z])"
)


#: The rules also run on the folded copy (see :func:`_folded`): those about wording.
_WORDING = frozenset({"override", "prompt_leak", "addressed_to_model"})

# Markup and escapes spelling a bracket: "&lt;system&gt;", "\u003c/evidence\u003e".
_BRACKETS = {"lt": "<", "gt": ">", "60": "<", "62": ">", "3c": "<", "3e": ">"}
_ENTITY = re.compile(r"&(?:lt|gt|#0*6[02]|#x0*3[ce]);|\\u003[ce]|\\x3[ce]", _F)
# Words written with digits for letters ("1gn0re", "prev1ous"), letters spaced or dotted
# out ("i g n o r e"), and words broken by a hyphen ("in-structions").
_LEET_WORD = re.compile(r"(?<![\w@$])(?:[A-Za-z]+[013457@$]|[013457@$]+[A-Za-z])[\w@$]*")
_LEET = str.maketrans("013457@$", "oieastas")
_SPACED = re.compile(
    r"(?<![^\s\"'(\[])[A-Za-z](?P<sep>[ ._*\-])[A-Za-z](?:(?P=sep)[A-Za-z])+(?![\w])"
)
_BROKEN = re.compile(r"(?<=[A-Za-z])-(?=[a-z])")

_COMMENT = re.compile(r"<!--(.{1,800}?)-->", re.DOTALL)
# Base64 runs long enough to carry a sentence.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")

_View = tuple[str, "Sequence[int]", "Sequence[int]"]


def _rewrite(view: _View, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> _View:
    """``view`` with each match of ``pattern`` replaced, keeping the original offsets: a
    replacement of the same length maps character by character, any other maps every
    character to the whole match."""
    text, starts, ends = view
    parts: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    pos = 0
    for m in pattern.finditer(text):
        a, b = m.span()
        new = repl(m)
        parts.append(text[pos:a])
        new_starts += starts[pos:a]
        new_ends += ends[pos:a]
        parts.append(new)
        if len(new) == b - a:
            new_starts += starts[a:b]
            new_ends += ends[a:b]
        else:
            new_starts += [starts[a]] * len(new)
            new_ends += [ends[b - 1]] * len(new)
        pos = b
    if not pos:
        return view
    parts.append(text[pos:])
    new_starts += starts[pos:]
    new_ends += ends[pos:]
    return "".join(parts), new_starts, new_ends


def _normalised(text: str) -> _View:
    """``text`` with invisible characters dropped, look-alike letters folded and escaped
    brackets decoded, with the start and end in ``text`` of each character of the result."""
    if text.isascii() and "&" not in text and "\\" not in text:
        return text, range(len(text)), range(1, len(text) + 1)
    chars: list[str] = []
    where: list[int] = []
    plain = text.isascii()
    for i, ch in enumerate(text):
        if not plain:
            if _is_dropped(ch):
                continue
            if not ch.isascii():
                folded = unicodedata.normalize("NFKC", ch)
                chars.append(folded if len(folded) == 1 else ch)
                where.append(i)
                continue
        chars.append(ch)
        where.append(i)
    view: _View = ("".join(chars).translate(LOOKALIKE), where, [i + 1 for i in where])
    return _rewrite(view, _ENTITY, lambda m: _BRACKETS[m.group().lower().rstrip(";")[-2:]])


def _folded(view: _View) -> _View | None:
    """The normalised text with leet digits read as letters, spaced-out letters joined and
    hyphen-broken words mended; ``None`` when there is nothing of the kind."""
    folded = _rewrite(view, _LEET_WORD, lambda m: m.group().translate(_LEET))
    folded = _rewrite(folded, _SPACED, lambda m: m.group().replace(m.group("sep"), ""))
    folded = _rewrite(folded, _BROKEN, lambda m: "")
    return None if folded is view else folded


def _decoded(blob: str) -> str | None:
    """The text a base64 run spells, if it is printable text."""
    core = blob.rstrip("=")
    if len(core) % 4 == 1:
        return None
    try:
        text = base64.b64decode(core + "=" * (-len(core) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return text if text.isprintable() or all(c.isprintable() or c.isspace() for c in text) else None


_Found = dict[str, list[tuple[int, int, float]]]


def _rule_spans(view: _View, wording_only: bool, found: _Found) -> None:
    """Add the matches of the rules in the normalised (or folded) ``view`` to ``found``."""
    norm, starts, ends = view
    lower = norm.lower()
    for kind, score, pattern, needles in RULES:
        if (wording_only and kind not in _WORDING) or (
            needles and not any(n in lower for n in needles)
        ):
            continue
        for m in pattern.finditer(norm):
            start, end = m.start(), m.end()
            while start < end and norm[start].isspace():
                start += 1  # anchors such as (?:^|\n) may take leading whitespace
            if start < end:
                found.setdefault(kind, []).append((starts[start], ends[end - 1], score))


def _spans(text: str, nested: bool) -> _Found:
    """Every rule's matches in ``text`` as (start, end, score), by rule; ``nested`` for the
    text a base64 run decodes to (which is not decoded again)."""
    found: _Found = {}
    for m in _INVISIBLE_RUN.finditer(text):
        found.setdefault("invisible", []).append((m.start(), m.end(), 1.0))
    view = _normalised(text)
    _rule_spans(view, False, found)
    folded = _folded(view)
    if folded is not None:
        _rule_spans(folded, True, found)
    norm, starts, ends = view
    for m in _COMMENT.finditer(norm) if "<!--" in norm else ():
        if COMMENT_READER.search(m.group(1)) and COMMENT_ORDER.search(m.group(1)):
            found.setdefault("hidden_html", []).append((starts[m.start()], ends[m.end() - 1], 1.0))
    for m in () if nested else _BASE64.finditer(text):
        decoded = _decoded(m.group())
        for kind, inner in _spans(decoded, nested=True).items() if decoded else ():
            found.setdefault(kind, []).append((m.start(), m.end(), max(s for _, _, s in inner)))
    return found


def find_injections(text: str, offset: int = 0) -> list[Tag]:
    """Spans of ``text`` aimed at a model, as ``injection`` tags in ``offset + position``.

    Overlapping spans of the same rule are merged; the result is ordered by start.
    """
    if not text:
        return []
    tags: list[Tag] = []
    for kind, spans in _spans(text, nested=False).items():
        spans.sort()
        merged: list[list[float]] = []
        for start, end, score in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
                merged[-1][2] = max(merged[-1][2], score)
            else:
                merged.append([start, end, score])
        tags += [
            Tag(kind="injection", type=kind, start=offset + int(s), end=offset + int(e), score=sc)
            for s, e, sc in merged
        ]
    return sorted(tags, key=lambda t: (t.start, t.end, t.type))

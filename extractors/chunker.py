"""Sentence-aware chunking that keeps exact character offsets."""

from __future__ import annotations

import re
from collections.abc import Iterator

from extractors.privacy import identifier_shapes
from graph import Chunk, DocumentId, chunk_id

__all__ = ["SentenceChunker", "split_sentences"]

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace
# and an opening character that can start a sentence. Text is untrusted: the quantifiers are
# possessive, so no run of brackets or whitespace is ever scanned twice.
_BOUNDARY = re.compile(r"""[.!?]["'\u201d\u2019)\]]*+(?=\s++["'\u201c\u2018(\[]?[A-Z0-9])""")
# A newline, then whitespace holding at least one more newline (up to the last one).
_PARAGRAPH = re.compile(r"\n(?:[^\S\n]*+\n)++")
_ABBREVIATIONS = frozenset(
    (
        "mr mrs ms dr prof sr jr st mt ft gen col lt sgt capt rev hon vs etc no vol fig "
        "inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec u.s e.g i.e a.m p.m"
    ).split()
)


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at ``dot`` ends an abbreviation or an initial, not a sentence."""
    start = dot
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "(\"'":
        start -= 1
    word = text[start:dot].casefold()
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "J. R. R. Tolkien"
    return word in _ABBREVIATIONS or ("." in word and len(word) <= 5)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` offsets of the sentences in ``text[start:end]``.

    Offsets index ``text`` itself; surrounding whitespace is excluded.
    """
    stop = len(text) if end is None else end
    pieces: list[tuple[int, int]] = []
    cursor = start
    for para in _PARAGRAPH.finditer(text, start, stop):
        pieces.append((cursor, para.start()))
        cursor = para.end()
    pieces.append((cursor, stop))
    for p_start, p_end in pieces:
        s = p_start
        for match in _BOUNDARY.finditer(text, p_start, p_end):
            if text[match.start()] == "." and _is_abbreviation(text, match.start()):
                continue
            yield from _trimmed(text, s, match.end())
            s = match.end()
        yield from _trimmed(text, s, p_end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


class SentenceChunker:
    """Packs whole sentences into chunks of at most ``max_chars`` characters.

    A sentence longer than ``max_chars`` is cut at whitespace. With ``overlap`` > 0 each
    chunk repeats the last ``overlap`` sentences of the one before it.
    """

    def __init__(self, *, max_chars: int = 1200, overlap: int = 0) -> None:
        if max_chars < 50:
            raise ValueError("max_chars must be at least 50")
        if overlap < 0:
            raise ValueError("overlap must not be negative")
        self.max_chars = max_chars
        self.overlap = overlap

    def chunk(self, document_id: DocumentId, text: str) -> list[Chunk]:
        """Split ``text`` into chunks whose spans index ``text`` exactly."""
        sentences = [piece for s, e in split_sentences(text) for piece in self._fit(text, s, e)]
        chunks: list[Chunk] = []
        group: list[tuple[int, int]] = []
        for sentence in sentences:
            if group and sentence[1] - group[0][0] > self.max_chars:
                chunks.append(self._make(document_id, text, group, len(chunks)))
                group = group[-self.overlap :] if self.overlap else []
                while group and sentence[1] - group[0][0] > self.max_chars:
                    group.pop(0)
            group.append(sentence)
        if group:
            chunks.append(self._make(document_id, text, group, len(chunks)))
        return chunks

    def _fit(self, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        if end - start <= self.max_chars:
            yield from _trimmed(text, start, end)
            return
        # A sentence too long for a chunk is cut at a space, never inside something shaped
        # like an identifier (a card number's groups, an address): each half alone would
        # be neither detected nor masked.
        shapes = [(start + a, start + b) for a, b in identifier_shapes(text[start:end])]
        while end - start > self.max_chars:
            low, cut, before = start + self.max_chars // 2, start + self.max_chars, None
            while True:
                cut = text.rfind(" ", low, cut)
                inside = next((a for a, b in shapes if a < cut < b), None)
                if inside is None:
                    break
                cut = before = inside  # look for a space before the identifier
            if cut <= start:
                # No space in the second half: cut before the identifier, else anywhere.
                cut = before if before is not None and before > start else start + self.max_chars
            yield from _trimmed(text, start, cut)
            start = cut
        yield from _trimmed(text, start, end)

    @staticmethod
    def _make(
        document_id: DocumentId, text: str, group: list[tuple[int, int]], index: int
    ) -> Chunk:
        start, end = group[0][0], group[-1][1]
        return Chunk(
            id=chunk_id(document_id, start, end),
            document_id=document_id,
            index=index,
            start=start,
            end=end,
            text=text[start:end],
        )

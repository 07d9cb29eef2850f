"""What extraction produces before entity resolution."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from graph import Chunk, RelationKind

__all__ = ["ChunkExtraction", "RawMention", "RawRelation"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RawMention(_Frozen):
    """A named thing found in a chunk, in document offsets."""

    text: str = Field(min_length=1)
    label: str
    start: int = Field(ge=0)
    end: int


class RawRelation(_Frozen):
    """A relation between two mentions of the same chunk (indexes into its mentions)."""

    subject: int = Field(ge=0)
    object: int = Field(ge=0)
    predicate: str = Field(min_length=1)
    kind: RelationKind
    confidence: float = Field(ge=0.0, le=1.0)
    sentence_start: int = Field(ge=0)
    sentence_end: int


class ChunkExtraction(_Frozen):
    """Mentions and relations found in one chunk."""

    chunk: Chunk
    mentions: tuple[RawMention, ...]
    relations: tuple[RawRelation, ...]
    #: Indexes of the mentions the chunk's opening sentence is about (its grammatical
    #: subject), on a document's first chunk only.
    subjects: tuple[int, ...] = ()

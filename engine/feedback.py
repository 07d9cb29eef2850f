"""Answer feedback: ratings and comments callers leave on answers, kept for evaluation.

One SQLite file, ``feedback.sqlite`` in the data dir, one row per rating. The table and
its columns are fixed: data dirs written by earlier versions open as they are. The spans
a rated answer cited (document, chunk and offsets; never their text) are kept beside it,
in a table of their own, for :meth:`FeedbackStore.low_rated`.

No personal data is kept: the API masks question, answer and comment with the caller's
redactor (:mod:`engine.redaction`) before they are added, and :meth:`FeedbackStore.add`
masks whatever the detector still finds in them.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from engine import clock
from engine.control_db import ControlDb, Schema, SqliteFile, Tx
from graph import InputError

__all__ = ["FeedbackStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS feedback (id TEXT PRIMARY KEY, ts TEXT, key_id TEXT, "
    "tenant TEXT, question TEXT, answer TEXT, rating INTEGER, comment TEXT, request_id TEXT)"
)


class FeedbackStore:
    """The feedback table. Open it with :meth:`open`; writes run in a worker thread."""

    def __init__(self, db: ControlDb) -> None:
        self._file = db

    @classmethod
    async def open(cls, where: Path | ControlDb) -> Self:
        """Open (creating if needed) the feedback tables: a SQLite file, or the control
        plane's database (:func:`engine.control_db.open_db`)."""
        if isinstance(where, Path):
            where = SqliteFile(where, what="the feedback store", opener="FeedbackStore.open")
        store = cls(where)
        await where.open(Schema((_SCHEMA, _SPANS), sqlite=_setup))
        return store

    async def add(
        self,
        *,
        key_id: str,
        tenant: str | None,
        question: str,
        answer: str,
        rating: int,
        comment: str = "",
        request_id: str | None = None,
        spans: Sequence[Mapping[str, Any]] = (),
    ) -> str:
        """Store one rating (and the spans the rated answer cited) and return its id;
        personal data the detector finds in the texts is masked first."""
        from engine.redaction import detector_for  # noqa: PLC0415 - loads Presidio on use

        mask = detector_for().mask
        question, answer, comment = mask(question), mask(answer), mask(comment)
        feedback_id = uuid.uuid4().hex
        row = (
            feedback_id,
            clock.now().isoformat(),
            key_id,
            tenant,
            question,
            answer,
            rating,
            comment,
            request_id,
        )
        cited = json.dumps([dict(s) for s in spans])

        def insert(db: Tx) -> None:
            db.execute("INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?,?)", row)
            if spans:
                db.execute("INSERT INTO feedback_spans VALUES (?,?)", (feedback_id, cited))

        await self._file.call(insert)
        return feedback_id

    async def low_rated(self, max_rating: int) -> list[dict[str, Any]]:
        """Ratings of ``max_rating`` or less, oldest first, each with its cited spans."""
        rows = await self._file.run(
            "SELECT f.id, f.ts, f.key_id, f.tenant, f.question, f.answer, f.rating, f.comment, "
            "f.request_id, s.spans FROM feedback f LEFT JOIN feedback_spans s "
            "ON s.feedback_id = f.id WHERE f.rating <= ? ORDER BY f.ts",
            (max_rating,),
        )
        names = ("id", "ts", "key_id", "tenant", "question", "answer", "rating", "comment")
        return [
            {
                **dict(zip(names, r[:8], strict=True)),
                "request_id": r[8],
                "spans": json.loads(r[9]) if r[9] else [],
            }
            for r in rows
        ]

    async def texts(self) -> list[dict[str, Any]]:
        """Every rating's id, time, tenant and text fields (question, answer, comment)."""
        rows = await self._file.run(
            "SELECT id, ts, tenant, question, answer, comment FROM feedback ORDER BY ts"
        )
        names = ("id", "ts", "tenant", "question", "answer", "comment")
        return [dict(zip(names, r, strict=True)) for r in rows]

    async def rewrite(self, changes: Mapping[str, Mapping[str, str]]) -> int:
        """Replace text fields (``question``, ``answer``, ``comment``) of ratings by id;
        the old text is overwritten in the file, not just unlinked. Returns rows changed."""
        allowed = {"question", "answer", "comment"}

        def update(db: Tx) -> int:
            changed = 0
            for feedback_id, fields in changes.items():
                for name, value in fields.items():
                    if name not in allowed:
                        raise InputError(f"not a text field of feedback: {name}")
                    sql = f"UPDATE feedback SET {name}=? WHERE id=?"  # noqa: S608 - allowed names
                    changed += db.execute(sql, (value, feedback_id)).rowcount
            return changed

        return await self._file.call(update)

    async def remove_before(self, cutoff: str) -> int:
        """Remove ratings given before ``cutoff`` (an ISO time) with their spans."""

        def remove(db: Tx) -> int:
            db.execute(
                "DELETE FROM feedback_spans WHERE feedback_id IN "
                "(SELECT id FROM feedback WHERE ts < ?)",
                (cutoff,),
            )
            return int(db.execute("DELETE FROM feedback WHERE ts < ?", (cutoff,)).rowcount)

        return await self._file.call(remove)

    async def close(self) -> None:
        """Close the file."""
        await self._file.close()


_SPANS = "CREATE TABLE IF NOT EXISTS feedback_spans (feedback_id TEXT PRIMARY KEY, spans TEXT)"


def _setup(db: sqlite3.Connection) -> None:
    # Erased and expired comments quote people: their bytes are overwritten, not unlinked.
    db.execute("PRAGMA secure_delete=ON")
    db.execute(_SCHEMA)
    db.execute(_SPANS)

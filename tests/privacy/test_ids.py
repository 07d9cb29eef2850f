"""Document ids are keyed: a reader who sees a document with a value masked cannot test
guesses of the value by recomputing the document's id (a content hash) offline."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from engine.readers import SourceDocument
from engine.settings import Settings
from engine.threadline import Threadline
from graph import document_id

pytestmark = pytest.mark.privacy

TEXT = "Please call Marta back on (415) 555-0132 about the Lisbon lease."
MEMO = SourceDocument(source="callback-note", title="Callback note", text=TEXT, origin="memo")


def _unkeyed(text: str) -> str:
    return document_id("acme", "callback-note", hashlib.sha256(text.encode()).hexdigest() + "|*")


async def test_a_new_data_dir_keys_its_ids_and_keeps_them(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path / "data"})
    async with await Threadline.open(settings) as tl:
        first = await tl.ingest([MEMO], tenant="acme")
    key_file = tmp_path / "data" / "id.key"
    assert key_file.stat().st_mode & 0o077 == 0
    (doc_id,) = first.document_ids
    assert doc_id != _unkeyed(TEXT)  # the guess "(415) 555-0132" does not reproduce it
    async with await Threadline.open(settings) as tl:
        again = await tl.ingest([MEMO], tenant="acme")
    assert again.unchanged == 1
    assert again.document_ids == (doc_id,)


async def test_replicas_sharing_a_key_agree_on_ids(tmp_path: Path) -> None:
    key = "a shared deployment secret"
    ids = []
    for name in ("one", "two"):
        settings = Settings.model_validate(
            {"data_dir": tmp_path / name, "privacy": {"id_key": key}}
        )
        async with await Threadline.open(settings) as tl:
            ids.append((await tl.ingest([MEMO], tenant="acme")).document_ids)
        assert not (tmp_path / name / "id.key").exists()
    assert ids[0] == ids[1]
    keyed = hmac.new(key.encode(), TEXT.encode(), hashlib.sha256).hexdigest()
    assert ids[0] == (document_id("acme", "callback-note", keyed + "|*"),)


async def test_a_store_with_unkeyed_ids_keeps_them(tmp_path: Path) -> None:
    """A data dir written before keys (documents, no id.key) keeps unkeyed ids, so an
    unchanged document re-sent is still found unchanged."""
    settings = Settings.model_validate({"data_dir": tmp_path / "data"})
    async with await Threadline.open(settings) as tl:
        await tl.ingest([MEMO], tenant="acme")
    (tmp_path / "data" / "id.key").unlink()  # as if written before keys existed
    async with await Threadline.open(settings) as tl:
        other = SourceDocument(
            source="other-note", title="Other", text="The lease runs to May.", origin="note"
        )
        report = await tl.ingest([other], tenant="acme")
    assert not (tmp_path / "data" / "id.key").exists()
    unkeyed = hashlib.sha256(other.text.encode()).hexdigest()
    assert report.document_ids == (document_id("acme", "other-note", unkeyed + "|*"),)

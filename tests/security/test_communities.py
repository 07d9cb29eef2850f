"""Communities behind the walls: what a caller sees of the corpus as a whole.

A community's id, name, members, counts, key facts and summary are as private as the
documents they come from. Two tenants and a secret group inside one of them write memos
whose names overlap ("Helios Partners" is in acme's public memo and in group g1's); each
reader lists communities (every level), opens each one, and asks corpus-wide questions,
and no string only an unreadable memo states may appear. A secret memo must not move a
public community either: acme's view is the same before and after g1 writes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from engine.readers import SourceDocument
from engine.settings import Settings
from engine.threadline import Threadline
from graph import Access, NotFoundError

pytestmark = pytest.mark.security

#: (tenant, groups, source, text, strings only this memo states)
MEMOS: list[tuple[str, tuple[str, ...], str, str, tuple[str, ...]]] = [
    (
        "bravo",
        (),
        "bravo-memo",
        "Zorblax Quantum Holdings will acquire Plinth Robotics, according to Ondrea Vask. "
        "Ondrea Vask chairs the Zorblax Quantum Holdings board in Kestrelford. "
        "Plinth Robotics builds warehouse robots for Zorblax Quantum Holdings.",
        ("zorblax", "ondrea", "vask", "bravo-memo"),
    ),
    (
        "acme",
        (),
        "acme-note",
        "Helios Partners advised Dana Whitlow on the Corvane Shipping review. "
        "Dana Whitlow leads Corvane Shipping in Port Almery. "
        "Helios Partners opened an office in Port Almery.",
        ("whitlow", "corvane", "almery", "acme-note"),
    ),
]

#: Group g1's memo, written after acme's view is taken once.
SECRET = (
    "acme",
    ("g1",),
    "acme-secret",
    "Helios Partners hired Marlow Fenwick as chief counsel. Marlow Fenwick previously "
    "worked for Quintrell Mining in Aldergate. Quintrell Mining sued Helios Partners.",
    ("marlow", "fenwick", "quintrell", "aldergate", "counsel", "acme-secret"),
)

READERS: dict[str, Access] = {
    "acme": Access(tenant="acme"),
    "acme-g1": Access(tenant="acme", groups=frozenset({"g1"})),
    "bravo": Access(tenant="bravo"),
}

QUESTIONS = (
    "What are the main themes in these documents?",
    "Who are the key people and organisations, and how are they connected?",
)


def _forbidden(access: Access) -> set[str]:
    hidden: set[str] = set()
    for tenant, groups, *_, unique in [*MEMOS, SECRET]:
        if not access.can_read(tenant, groups or ("*",)):
            hidden |= set(unique)
    return hidden


def _leaks(access: Access, payload: Any) -> list[str]:
    text = json.dumps(payload).casefold()
    return sorted(s for s in _forbidden(access) if s in text)


async def _ingest(tl: Threadline, memo: tuple[str, tuple[str, ...], str, str, Any]) -> None:
    tenant, groups, source, text, _ = memo
    doc = SourceDocument(source=source, title=source, text=text, origin=source)
    await tl.ingest([doc], tenant=tenant, groups=groups)


async def _walk(tl: Threadline, access: Access) -> dict[str, Any]:
    """Every community surface as ``access``: the list, each community, global answers."""
    browser = tl.browse(access)
    listed = [v.model_dump(mode="json") for v in await browser.communities()]
    opened = [(await browser.community(v["id"])).model_dump(mode="json") for v in listed]
    answers = [
        (await tl.ask(q, access)).model_dump(mode="json", exclude={"question"}) for q in QUESTIONS
    ]
    return {"listed": listed, "opened": opened, "answers": answers}


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each reader's walk before and after g1's memo, and what probing g1's ids returns."""
    data_dir: Path = tmp_path_factory.mktemp("community-walls") / "data"

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with await Threadline.open(Settings(data_dir=data_dir)) as tl:
            for memo in MEMOS:
                await _ingest(tl, memo)
            out["acme-before"] = await _walk(tl, READERS["acme"])
            await _ingest(tl, SECRET)
            for name, access in READERS.items():
                out[name] = await _walk(tl, access)
            mine = {v["id"] for v in out["acme"]["listed"]}
            secret = [v["id"] for v in out["acme-g1"]["listed"] if v["id"] not in mine]
            out["secret-ids"] = secret
            refused = []
            for cid in secret:
                for name in ("acme", "bravo"):
                    try:
                        await tl.browse(READERS[name]).community(cid)
                    except NotFoundError as exc:
                        refused.append(str(exc).replace(cid, "<id>"))
            out["refused"] = refused
            try:
                await tl.browse(READERS["acme"]).community("com_0000000000000000")
            except NotFoundError as exc:
                out["unknown"] = str(exc).replace("com_0000000000000000", "<id>")
        return out

    return asyncio.run(run())


@pytest.mark.parametrize("reader", sorted(READERS))
def test_no_community_surface_shows_another_scope(walked: dict[str, Any], reader: str) -> None:
    walk = walked[reader]
    assert walk["listed"], f"{reader} sees no communities at all"
    assert all(a["mode"] == "global" for a in walk["answers"])  # answered from communities
    for part in ("listed", "opened", "answers"):
        assert _leaks(READERS[reader], walk[part]) == [], (reader, part)


def test_readers_see_communities_of_their_own_documents(walked: dict[str, Any]) -> None:
    names = {r: json.dumps(walked[r]["listed"]).casefold() for r in READERS}
    assert "zorblax" in names["bravo"]
    assert "corvane" in names["acme"]
    assert "quintrell" in names["acme-g1"]
    assert "corvane" in names["acme-g1"]


def test_a_secret_memo_does_not_move_a_public_community(walked: dict[str, Any]) -> None:
    """Same ids, names, members, counts and summaries for acme before and after g1 wrote
    a memo naming the same organisation."""
    assert walked["acme"]["listed"] == walked["acme-before"]["listed"]
    assert walked["acme"]["opened"] == walked["acme-before"]["opened"]


def test_another_scopes_community_is_not_found_like_an_unknown_one(
    walked: dict[str, Any],
) -> None:
    assert walked["secret-ids"], "group g1's memo formed no community of its own"
    assert walked["refused"] == [walked["unknown"]] * len(walked["refused"])
    assert len(walked["refused"]) == 2 * len(walked["secret-ids"])

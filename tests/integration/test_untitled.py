"""Company documents titled by file name: memos, press releases, quarterly notes.

No document is titled with its subject, so every page the planner reads is found by what
the document's opening sentence is about. The questions are multi-hop role questions an
analyst asks; each answer must come out supported by the claims it cites. Another
tenant's memo about the same company is never read as its page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine import Settings, Threadline
from graph import Access

DOCUMENTS = {
    "press-2024-03-11.txt": (
        "Globex Corporation announced on Monday that it has completed its acquisition of "
        "Initech. The deal was valued at $2.1 billion and closed in March 2024. Globex said "
        "the purchase strengthens its software business."
    ),
    "profile-114.md": (
        "Initech is a software company based in Austin, Texas. It was founded in 1998 by "
        "Bill Lumbergh, who served as its chief executive until 2019. Initech makes payroll "
        "and reporting tools for banks."
    ),
    "hr-note-7.txt": (
        "Bill Lumbergh was born in Dayton, Ohio. He studied economics at Ohio State "
        "University before moving to Texas in 1995."
    ),
    "press-2023-11-02.txt": (
        "Hooli Inc. announced that it had acquired Pied Piper, a compression startup based "
        "in Palo Alto, California. Pied Piper was founded by Richard Hendricks in 2014."
    ),
    "memo-22.txt": (
        "Richard Hendricks was born in Tulsa, Oklahoma. He worked as an engineer at Hooli "
        "before he started his own company."
    ),
    "q3-2024-note.txt": (
        "Quarterly note, Q3 2024\n\nGlobex reported revenue of $4.2 billion for the third "
        "quarter, up 8 percent from a year earlier. Initech contributed $310 million."
    ),
    "board-minutes-2024-05.txt": (
        "The board of Umbrella Corporation met in Raccoon City on May 14. Umbrella "
        "Corporation is headquartered in Raccoon City and was founded by Oswell Spencer in "
        "1968."
    ),
    "supplier-review.txt": (
        "Vandelay Industries supplies latex and packaging to Initech and to Umbrella "
        "Corporation. Vandelay Industries was founded by Art Vandelay in New York."
    ),
}
#: Another tenant's memo: what it says about Initech must not reach this tenant.
RIVAL = "Initech is a consulting firm based in Boston. It was founded by Milton Waddams."
READER = Access(tenant="default")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("memos")
    for name, text in DOCUMENTS.items():
        (root / name).write_text(text + "\n", encoding="utf-8")
    (root / "rival").mkdir()
    (root / "rival" / "initech.txt").write_text(RIVAL + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("untitled") / "data"


@pytest.fixture
async def tl(corpus: Path, data_dir: Path) -> AsyncIterator[Threadline]:
    async with await Threadline.open(Settings(data_dir=data_dir)) as opened:
        # no-ops after the first test
        await opened.ingest(opened.read([corpus / n for n in DOCUMENTS]))
        await opened.ingest(opened.read([corpus / "rival" / "initech.txt"]), tenant="rival")
        yield opened


async def test_documents_say_what_they_are_about(tl: Threadline) -> None:
    docs = {Path(d.source).name: d for d in await tl.graph.documents(READER, limit=50)}
    assert set(docs) == set(DOCUMENTS)  # the rival's memo is not this tenant's
    assert all(d.title == Path(d.source).stem for d in docs.values())  # file names only
    assert "Initech" in docs["profile-114.md"].about
    assert "Bill Lumbergh" in docs["hr-note-7.txt"].about
    assert "Globex Corporation" in docs["press-2024-03-11.txt"].about
    assert docs["board-minutes-2024-05.txt"].about == ()  # "The board … met": no name


@pytest.mark.parametrize(
    ("question", "answer", "pages"),
    [
        # founder (a role) → the founder's birthplace: two hops over two untitled memos
        ("Where was the founder of Initech born?", "Dayton", ["profile-114.md", "hr-note-7.txt"]),
        # the acquirer's press release → the acquired company's profile
        ("Where is the company that Globex acquired based?", "Austin", ["profile-114.md"]),
        # "It was founded by …" in a memo about Initech
        ("Who founded Initech?", "Bill Lumbergh", ["profile-114.md"]),
        # a verb written as a noun: "its acquisition of Initech"
        ("Which company did Globex acquire?", "Initech", []),
    ],
)
async def test_multi_hop_role_questions(
    tl: Threadline, question: str, answer: str, pages: list[str]
) -> None:
    result = await tl.ask(question, READER)
    assert result.answer == answer, (result.answer, result.answer_reason)
    assert result.answer_verdict == "supported"
    cited = {Path(d.source).name for c in result.claims for d in c.documents}
    assert cited <= set(DOCUMENTS)
    read = await tl.graph.chunks([s.home for s in _bindings(result) if s.home], READER)
    found = {Path(await _source(tl, c.document_id)).name for c in read}
    assert set(pages) <= found, found


async def test_another_tenants_memo_is_never_a_page(tl: Threadline) -> None:
    pages = await tl.graph.pages(["Initech"], READER)
    sources = {await _source(tl, c.document_id) for c in pages["Initech"]}
    assert {Path(s).name for s in sources} == {"profile-114.md"}
    rival = await tl.graph.pages(["Initech"], Access(tenant="rival"))
    assert [c.text.strip() for c in rival["Initech"]] == [RIVAL]
    result = await tl.ask("Who founded Initech?", READER)
    assert "Milton" not in (result.answer + " ".join(c.text for c in result.claims))


def _bindings(result):  # type: ignore[no-untyped-def]
    return [b for step in result.plan or () for b in step.output]


async def _source(tl: Threadline, document_id: str) -> str:
    (doc,) = await tl.graph.documents(Access.admin(), ids=[document_id])
    return doc.source

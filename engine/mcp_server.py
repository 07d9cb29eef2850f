"""``threadline mcp``: Threadline's tools over the Model Context Protocol (stdio).

Agent frameworks and assistants that speak MCP get the same tools as
:mod:`engine.tools` — ask, search, entity, neighborhood, paths, facts, communities — with the same
JSON results, provenance included. The server reads as one tenant (and groups), given
on the command line; it never writes. Personal data is masked in every result unless the
command was given ``--permission pii`` (:mod:`engine.redaction`).
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from engine.settings import Settings
from engine.threadline import Threadline
from engine.tools import TOOL_ARGUMENTS, ThreadlineToolbox
from graph import Access

__all__ = ["build_server", "serve_stdio"]


def build_server(toolbox: ThreadlineToolbox) -> MCPServer:
    """An MCP server exposing ``toolbox``'s tools."""
    server = MCPServer(
        name="threadline",
        instructions=(
            "Threadline answers questions from a knowledge graph and its source documents. "
            "Every answer claim carries its provenance chain (facts, exact source spans, "
            "documents) and a verdict from the validator; cite only supported claims."
        ),
    )

    async def ask(question: str, k: int = 5, mode: str = "threadline") -> dict[str, Any]:
        return await toolbox.call_json("ask", {"question": question, "k": k, "mode": mode})

    async def search(query: str, k: int = 5) -> dict[str, Any]:
        return await toolbox.call_json("search", {"query": query, "k": k})

    async def entity(name: str) -> dict[str, Any]:
        return await toolbox.call_json("entity", {"name": name})

    async def neighborhood(name: str, depth: int = 1, limit: int = 20) -> dict[str, Any]:
        args = {"name": name, "depth": depth, "limit": limit}
        return await toolbox.call_json("neighborhood", args)

    async def paths(source: str, target: str, max_hops: int = 3, limit: int = 3) -> dict[str, Any]:
        args = {"source": source, "target": target, "max_hops": max_hops, "limit": limit}
        return await toolbox.call_json("paths", args)

    async def facts(name: str, predicate: str | None = None, limit: int = 20) -> dict[str, Any]:
        args = {"name": name, "predicate": predicate, "limit": limit}
        return await toolbox.call_json("facts", args)

    for fn in (ask, search, entity, neighborhood, paths, facts):
        doc = (TOOL_ARGUMENTS[fn.__name__].__doc__ or "").strip()
        server.add_tool(fn, name=fn.__name__, description=doc, structured_output=True)
    return server


async def serve_stdio(settings: Settings, access: Access, *, pii: bool = False) -> None:
    """Open the knowledge base and serve its tools on stdin/stdout until the client leaves
    (personal data masked in every result unless ``pii``)."""
    async with await Threadline.open(settings) as tl:
        await build_server(ThreadlineToolbox(tl, access, pii=pii)).run_stdio_async()

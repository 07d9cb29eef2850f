"""``threadline`` commands around models and agents: ``mcp``, ``research`` and
``serve-model-local``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from engine.cli_common import (
    DataDir,
    Groups,
    JsonOut,
    Permissions,
    Tenant,
    access_for,
    app,
    emit_json,
    err,
    fail,
    load_settings,
    out,
    redactor,
    run_job,
    sees_pii,
)
from engine.threadline import Threadline
from graph import Access, ThreadlineError

__all__ = ["mcp", "research", "serve_model_local"]


@app.command()
def mcp(
    tenant: Tenant = None,
    group: Groups = None,
    permission: Permissions = None,
    data_dir: DataDir = None,
) -> None:
    """Serve Threadline's tools (ask, search, entity, neighborhood, paths, facts) over MCP on
    stdin/stdout, reading as one tenant (default: THREADLINE_TENANT) and its groups, with
    personal data masked unless --permission pii."""
    from engine.mcp_server import serve_stdio  # noqa: PLC0415 - only this command needs it

    settings = load_settings(data_dir)
    access = Access(tenant=tenant or settings.tenant, groups=frozenset(group or ()))
    try:
        asyncio.run(serve_stdio(settings, access, pii=sees_pii(permission)))
    except ThreadlineError as exc:
        raise fail(exc) from exc


@app.command()
def research(
    question: Annotated[str, typer.Argument(help="The research question.")],
    llm: Annotated[
        bool, typer.Option("--llm", help="The configured model drives the tool-calling loop.")
    ] = False,
    tool_calling: Annotated[
        str,
        typer.Option(
            help="json (tools chosen through structured output; any server) or native "
            "(OpenAI tool calls; vLLM with a tool-call parser)."
        ),
    ] = "json",
    max_steps: Annotated[int, typer.Option(min=1, max=100, help="Tool calls allowed.")] = 12,
    max_tokens: Annotated[int, typer.Option(min=100, help="Model tokens allowed.")] = 30_000,
    tenant: Tenant = None,
    group: Groups = None,
    permission: Permissions = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Research a question in several steps and write a report whose every statement cites
    a validated provenance chain (the trace of tool calls comes with --json). The agent and
    its model read personal data masked unless --permission pii."""
    from agents.research import ResearchAgent, ResearchBudget  # noqa: PLC0415
    from engine.metering import acting_as, caller_for  # noqa: PLC0415
    from engine.tools import ThreadlineToolbox  # noqa: PLC0415

    if tool_calling not in {"json", "native"}:
        raise typer.BadParameter("--tool-calling takes json or native")

    async def job(tl: Threadline) -> Any:
        access = access_for(tenant, group) if tenant else tl.access()
        shown = await redactor(tl, access, permission)
        agent = ResearchAgent(
            ThreadlineToolbox(tl, access, pii=sees_pii(permission)),
            model=tl.model if llm else None,
            budget=ResearchBudget(max_steps=max_steps, max_tokens=max_tokens),
            tool_calling="native" if tool_calling == "native" else "json",
        )
        with acting_as(caller_for(access)):  # the model's tokens count against the tenant
            return shown.scrub(await agent.run(shown.input(question)))

    report = run_job(data_dir, job)
    if as_json:
        emit_json(
            {
                "question": report.question,
                "mode": report.mode,
                "sub_questions": report.sub_questions,
                "statements": [
                    {
                        "text": s.text,
                        "notes": list(s.notes),
                        "claim": s.claim.model_dump(mode="json"),
                    }
                    for s in report.statements
                ],
                "notes": [{"id": n.id, "text": n.text, "step": n.step} for n in report.notes],
                "trace": [
                    {
                        "step": t.step,
                        "tool": t.tool,
                        "arguments": t.arguments,
                        "by": t.by,
                        "ms": t.ms,
                        "error": t.result.get("error"),
                    }
                    for t in report.trace
                ],
                "stopped": report.stopped,
                "dropped": report.dropped,
                "usage": {
                    "prompt_tokens": report.usage.prompt_tokens,
                    "completion_tokens": report.usage.completion_tokens,
                },
            }
        )
        return
    out.print(escape(report.markdown()), highlight=False)
    out.print(
        f"[dim]{len(report.trace)} tool calls ({report.mode}), {len(report.notes)} notes; "
        f"{report.stopped}[/]",
        markup=True,
    )


@app.command("serve-model-local")
def serve_model_local(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8080,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Requests served at once.")] = 4,
    embeddings: Annotated[
        bool, typer.Option("--embeddings", help="Serve /v1/embeddings instead of chat.")
    ] = False,
    build: Annotated[
        Path | None,
        typer.Option(
            help="Build llama-server from this llama-cpp-python source archive first.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    build_only: Annotated[bool, typer.Option("--build-only", help="Build, do not serve.")] = False,
) -> None:
    """Run llama.cpp's llama-server with the packaged SmolLM2-135M-Instruct on 127.0.0.1.

    A laptop stand-in for vLLM: set THREADLINE_MODEL__BASE_URL=http://127.0.0.1:PORT/v1.
    """
    from engine.local_model import (  # noqa: PLC0415 - only this command needs it
        LOCAL_MODEL_ALIAS,
        LocalModelServer,
        build_llama_server,
        default_server_binary,
    )

    try:
        if build is not None and not default_server_binary().is_file():
            err.print(f"building llama-server into {default_server_binary()} (several minutes)")
            build_llama_server(build, default_server_binary())
        if build_only:
            out.print(str(default_server_binary()))
            return
        server = LocalModelServer(port=port, parallel=parallel, embeddings=embeddings)
        server.start()
    except ThreadlineError as exc:
        raise fail(exc) from exc
    out.print(f"serving {LOCAL_MODEL_ALIAS} at {server.base_url} (Ctrl-C stops it)")
    out.print(
        f"export THREADLINE_MODEL__BASE_URL={server.base_url} "
        f"THREADLINE_MODEL__MODEL={LOCAL_MODEL_ALIAS}"
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()

"""Markdown as LlamaIndex's ``MarkdownReader`` reads it, by string scanning.

Links and images reduced to their text, HTML tags removed, the text split into runs under
heading paths joined with " / ". The library does this with regular expressions that
backtrack quadratically or worse on a line of brackets or "<"; documents are untrusted, so
every function here works in time linear in its input.
"""

from __future__ import annotations

__all__ = ["markdown_sections", "remove_links", "remove_tags"]


def remove_links(text: str) -> str:
    """Links ``[label](target)`` and images ``![label](target)`` to ``label``, within a
    line, leftmost first (as ``re.sub`` with ``\\[(.*?)\\]\\((.*?)\\)`` would), in one pass."""
    out: list[str] = []
    done = 0
    start = text.find("[")
    while start != -1:
        line_end = text.find("\n", start)
        line_end = len(text) if line_end == -1 else line_end
        middle = text.find("](", start + 1, line_end)
        close = text.find(")", middle + 2, line_end) if middle != -1 else -1
        if close == -1:
            # No link can start anywhere else on this line either.
            start = text.find("[", line_end)
            continue
        image = start > done and text[start - 1] == "!"
        out.append(text[done : start - 1 if image else start])
        out.append(text[start + 1 : middle])
        done = close + 1
        start = text.find("[", done)
    out.append(text[done:])
    return "".join(out)


def remove_tags(text: str) -> str:
    """Drop ``<...>`` spans within a line (as ``re.sub`` with ``<.*?>`` would), in one pass."""
    out: list[str] = []
    done = 0
    start = text.find("<")
    while start != -1:
        line_end = text.find("\n", start)
        line_end = len(text) if line_end == -1 else line_end
        close = text.find(">", start + 1, line_end)
        if close == -1:
            start = text.find("<", line_end)
            continue
        out.append(text[done:start])
        done = close + 1
        start = text.find("<", done)
    out.append(text[done:])
    return "".join(out)


def markdown_sections(text: str) -> list[tuple[str | None, str]]:
    """(heading path, text) runs of a Markdown text, as LlamaIndex's ``markdown_to_tups``
    splits them, outside fenced code blocks."""
    sections: list[tuple[str | None, str]] = []
    lines: list[str] = []
    headers: dict[int, str] = {}
    in_code = False
    for raw in text.split("\n"):
        if raw.startswith("```"):
            in_code = not in_code
        if in_code:
            lines.append(raw)
            continue
        line = raw.strip()
        if not line:
            continue
        level = len(line) - len(line.lstrip("#"))
        if level == 0 or level == len(line) or not line[level].isspace():
            lines.append(line)
            continue
        if lines and not headers:
            sections.append((None, "\n".join(lines)))
            lines = []
        if headers.get(level):
            sections.append((" / ".join(headers.values()), "\n".join(lines)))
            headers = {k: v for k, v in headers.items() if k < level}
            lines = []
        headers[level] = line[level:].lstrip()
    if lines or headers:
        sections.append((" / ".join(headers.values()), "\n".join(lines)))
    return [(key.strip() if key else None, remove_tags(value)) for key, value in sections]

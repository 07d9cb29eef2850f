"""The OpenAPI document only grows: everything in ``openapi.json`` is still served as is.

``openapi.json`` pins the published API (paths, methods, parameters, request and response
schemas, status codes). New paths, operations, optional fields, status codes and enum
values are additions and pass; removing or changing anything, or making an existing
field or parameter required, fails. After adding to the API on purpose, refresh the pin
with ``python -m tests.api.test_openapi``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from engine.api import create_app
from engine.settings import Settings

pytestmark = pytest.mark.api

PINNED = Path(__file__).with_name("openapi.json")


def _document(data_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(data_dir=data_dir)).openapi()
    return document


def breaks(pinned: Any, current: Any, where: str = "") -> list[str]:
    """What ``current`` removed or changed from ``pinned`` (additions are fine)."""
    if isinstance(pinned, dict):
        if not isinstance(current, dict):
            return [f"{where or '/'}: was an object, now {current!r}"]
        problems = []
        for key, value in pinned.items():
            if key not in current:
                problems.append(f"{where}/{key}: removed")
            elif key == "required" and isinstance(value, list):
                known = set(pinned.get("properties", {}))
                added = set(current[key]) - set(value)
                problems += [f"{where}/properties/{n}: became required" for n in added & known]
                problems += breaks(value, current[key], f"{where}/{key}")
            elif key == "parameters" and isinstance(value, list):
                problems += breaks(value, current[key], f"{where}/{key}")
                new = [p for p in current[key] if not any(not breaks(q, p) for q in value)]
                problems += [
                    f"{where}/{key}: new required parameter {p.get('name')}"
                    for p in new
                    if isinstance(p, dict) and p.get("required")
                ]
            else:
                problems += breaks(value, current[key], f"{where}/{key}")
        return problems
    if isinstance(pinned, list):
        if not isinstance(current, list):
            return [f"{where}: was a list, now {current!r}"]
        return [
            f"{where}: lost {item!r}"
            for item in pinned
            if not any(not breaks(item, candidate) for candidate in current)
        ]
    if pinned != current:
        return [f"{where}: {pinned!r} became {current!r}"]
    return []


def test_the_api_only_grows(tmp_path: Path) -> None:
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    assert len(pinned["paths"]) >= 16
    assert breaks(pinned, _document(tmp_path / "data")) == []


def test_the_check_finds_removals_and_changes(tmp_path: Path) -> None:
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    current = _document(tmp_path / "data")

    removed = copy.deepcopy(current)
    del removed["paths"]["/v1/paths"]
    assert breaks(pinned, removed) == ["/paths//v1/paths: removed"]

    status = copy.deepcopy(current)
    responses = status["paths"]["/v1/feedback"]["post"]["responses"]
    responses["202"] = responses.pop("201")
    assert "/paths//v1/feedback/post/responses/201: removed" in breaks(pinned, status)

    narrowed = copy.deepcopy(current)
    narrowed["components"]["schemas"]["AskRequest"]["required"].append("k")
    assert breaks(pinned, narrowed) == [
        "/components/schemas/AskRequest/properties/k: became required"
    ]

    param = copy.deepcopy(current)
    param["paths"]["/v1/documents"]["get"]["parameters"].append(
        {"in": "query", "name": "shard", "required": True, "schema": {"type": "integer"}}
    )
    assert breaks(pinned, param) == [
        "/paths//v1/documents/get/parameters: new required parameter shard"
    ]

    grown = copy.deepcopy(current)
    grown["paths"]["/v1/extra"] = {"get": {"responses": {"200": {"description": "OK"}}}}
    grown["components"]["schemas"]["AskRequest"]["properties"]["extra"] = {"type": "string"}
    assert breaks(pinned, grown) == []


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        document = _document(Path(folder) / "data")
    PINNED.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {PINNED}")

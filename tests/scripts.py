"""The scripts of ``datasets/`` loaded as modules (a folder of scripts, not a package:
the name belongs to another library)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DATASETS = Path(__file__).resolve().parent.parent / "datasets"


def load(name: str) -> ModuleType:
    """``datasets/<name>.py`` as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, DATASETS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

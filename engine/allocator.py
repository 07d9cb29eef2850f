"""Keeping the C heap small on glibc: fewer per-thread arenas, freed memory handed back.

An ingest runs models and parsers in several threads; glibc gives each thread that
allocates its own arena (up to eight per core) and keeps what is freed in them, so a
process that has ingested holds about as much freed heap as live data. Two arenas and a
trim after each written batch keep the resident set near the live data. Elsewhere (musl,
macOS) both calls do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
from typing import Any

__all__ = ["limit_arenas", "trim"]

_M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


@functools.cache
def _glibc() -> Any:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def limit_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (call before threads start; an explicit
    ``MALLOC_ARENA_MAX`` in the environment wins). Returns whether the cap was set."""
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


def trim() -> None:
    """Hand the heap's free pages back to the operating system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)

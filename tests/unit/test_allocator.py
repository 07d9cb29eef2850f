"""The C heap helpers: arenas capped unless the environment says otherwise, freed heap
handed back by a trim."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from engine import allocator

_CHILD = textwrap.dedent(
    """
    from engine.allocator import limit_arenas, trim

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    print(limit_arenas())
    blocks = [bytes(2048) for _ in range(100_000)]  # 200 MB of blocks glibc allocates
    keep = blocks[::64]  # one live block in every 128 KB: nothing to give back at the top
    blocks.clear()
    before = rss_mib()
    trim()
    print(round(before - rss_mib()))
    """
)


def _child(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.split()


def test_arenas_are_capped_and_a_trim_returns_freed_heap() -> None:
    capped, returned = _child({"PATH": "/usr/bin:/bin", "PYTHONPATH": "."})
    assert capped == "True"
    assert int(returned) > 100  # of the ~200 MB freed


def test_an_explicit_arena_setting_wins() -> None:
    capped, _ = _child({"PATH": "/usr/bin:/bin", "PYTHONPATH": ".", "MALLOC_ARENA_MAX": "4"})
    assert capped == "False"


def test_the_helpers_are_safe_to_call_in_this_process() -> None:
    allocator.trim()
    assert allocator.limit_arenas() in (True, False)

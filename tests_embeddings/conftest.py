"""Tests that need the `embeddings` extra (torch, sentence-transformers, MiniLM); run them
with `make test-embeddings`. They use the main suite's session fixtures."""

from tests.conftest import data_dir, org_ids, resources, settings

__all__ = ["data_dir", "org_ids", "resources", "settings"]

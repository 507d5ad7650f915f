"""`store.index.embed` as a path to the project's own embedding function, as langgraph-api
takes it: `./file.py:function` (relative to the config file) or `package.module:function`."""

from __future__ import annotations

import textwrap

from tenantgraph.scope import Principal
from tenantgraph.services.tenant_store import StoreConfig

from .store_support import create_org

# Three topics, one axis each; the function counts its calls so the test knows it ran.
EMBEDDER = textwrap.dedent(
    """
    CALLS = []
    TOPICS = ("apple", "engine", "violin")

    def embed(texts):
        CALLS.append(list(texts))
        return [[float(topic in text.lower()) + 0.01 for topic in TOPICS] for text in texts]
    """
)


async def test_embed_names_a_function_in_a_file_or_a_module(
    resources, org_ids, tmp_path, monkeypatch
):
    await create_org(resources, org_ids[0])
    (tmp_path / "my_embeddings.py").write_text(EMBEDDER)
    package = tmp_path / "tg_embed_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fns.py").write_text(EMBEDDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    for n, embed in enumerate(("./my_embeddings.py:embed", "tg_embed_pkg.fns:embed")):
        index = {"dims": 3, "embed": embed, "fields": ["text"]}
        config = StoreConfig.from_mapping({"index": index}, tmp_path)
        store = config.store(resources.db, Principal(org_ids[0], "alice"))
        ns = ("embed", str(n))
        await store.aput(ns, "fruit", {"text": "an apple a day"})
        await store.aput(ns, "car", {"text": "a loud engine"})
        await store.aput(ns, "music", {"text": "a violin sonata"})
        found = await store.asearch(ns, query="which engine?", limit=3)
        assert found[0].key == "car", embed
        assert found[0].score > found[1].score
    from tg_embed_pkg import fns

    assert ["which engine?"] in fns.CALLS

"""Assistants: every member of an org reads and runs them; admins write them.

Every registered graph has a default ("system") assistant in every org, with a fixed id per
graph. It is created in the caller's own tenant transaction when it is first needed: when
the org's assistants are searched or counted, or the assistant is named by its id or by
its graph's name (which stands for it). So an org finds one per graph from its first
request, a graph added to the registry later included, and no cross-tenant function is
needed to create them.

An assistant's `context` and `config["configurable"]` mirror each other, as in LangGraph
0.6+: whichever the caller sets is written to both.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from langgraph.pregel import Pregel
from psycopg import AsyncConnection

from tenantgraph.db.database import Database
from tenantgraph.errors import Conflict, InvalidRequest, NotFound
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.scope import Principal
from tenantgraph.stores import assistants as assistant_store

__all__ = ["Assistants"]


def _mirrored(config: dict | None, context: dict | None) -> tuple[dict | None, dict | None]:
    """(config, context) with `config["configurable"]` and `context` the same object's
    copies, whichever was given; 400 when both are."""
    configurable = (config or {}).get("configurable")
    if configurable and context:
        raise InvalidRequest(
            "Cannot specify both configurable and context. Prefer setting context alone."
        )
    if configurable:
        return config, dict(configurable)
    if context:
        return {**(config or {}), "configurable": dict(context)}, context
    return config, context


class Assistants:
    """The assistant use cases, each one tenant transaction."""

    def __init__(self, db: Database, registry: GraphRegistry) -> None:
        self.db = db
        self.registry = registry
        self.graph_ids = frozenset(registry.ids())
        self._defaults = {assistant_store.default_assistant_id(g): g for g in self.graph_ids}

    def check_graph(self, graph_id: str | None) -> None:
        """NotFound unless `graph_id` is None or names a registered graph."""
        if graph_id is not None and graph_id not in self.graph_ids:
            raise NotFound(f"graph {graph_id!r} not found")

    def _parse(self, raw: str | uuid.UUID) -> uuid.UUID | str:
        """An assistant id, or the graph name standing for the org's default assistant."""
        if isinstance(raw, uuid.UUID):
            return raw
        try:
            return uuid.UUID(raw)
        except ValueError:
            pass
        if raw in self.graph_ids:
            return raw
        raise NotFound(f"assistant {raw!r} not found")

    def default_graph(self, raw: str) -> str | None:
        """The graph whose default assistant `raw` names (its graph name or fixed id)."""
        if raw in self.graph_ids:
            return raw
        try:
            return self._defaults.get(uuid.UUID(raw))
        except ValueError:
            return None

    async def resolve_id(self, principal: Principal, raw: str) -> uuid.UUID:
        """A UUID, or a graph name standing for the org's default assistant of that graph."""
        target = self._parse(raw)
        if isinstance(target, uuid.UUID) and target not in self._defaults:
            return target
        async with self.db.tenant(principal) as conn:
            return await self._resolve(conn, principal, target)

    def _graph_of(self, target: uuid.UUID | str) -> str | None:
        """The graph of the default assistant `target` (a `_parse` result) names, if any."""
        return self._defaults.get(target) if isinstance(target, uuid.UUID) else target

    async def _resolve(
        self, conn: AsyncConnection, principal: Principal, target: uuid.UUID | str
    ) -> uuid.UUID:
        """The id of `target`, creating the default assistant when it names one."""
        graph_id = self._graph_of(target)
        if graph_id is None:
            assert isinstance(target, uuid.UUID)
            return target
        return (await assistant_store.ensure_default(conn, principal, graph_id))["assistant_id"]

    async def create(
        self,
        principal: Principal,
        *,
        graph_id: str,
        assistant_id: uuid.UUID | None = None,
        config: dict | None = None,
        context: dict | None = None,
        metadata: dict | None = None,
        name: str | None = None,
        description: str | None = None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
    ) -> dict[str, Any]:
        """Create an assistant (a caller-chosen id is honoured); `if_exists="do_nothing"`
        returns the existing one instead of a Conflict."""
        self.check_graph(graph_id)
        principal.require_admin("changing assistants")
        config, context = _mirrored(config, context)
        assistant_id = assistant_id or uuid.uuid4()
        fields = {
            "graph_id": graph_id,
            "name": name or "Untitled",
            "description": description,
            "config": config or {},
            "context": context or {},
            "metadata": metadata or {},
        }
        async with self.db.tenant(principal) as conn:
            row = await assistant_store.insert(conn, principal, assistant_id, fields)
            if row is None and if_exists == "do_nothing":
                row = await _get(conn, principal, assistant_id)
        if row is None:
            raise Conflict(f"assistant {assistant_id} already exists")
        return row

    async def get(self, principal: Principal, assistant_id: str | uuid.UUID) -> dict[str, Any]:
        target = self._parse(assistant_id)
        graph_id = self._graph_of(target)
        async with self.db.tenant(principal) as conn:
            if graph_id is not None:
                return await assistant_store.ensure_default(conn, principal, graph_id)
            return await _get(conn, principal, target)

    async def graph(
        self, principal: Principal, assistant_id: str | uuid.UUID
    ) -> tuple[dict[str, Any], Pregel]:
        """The assistant and its graph, built with the assistant's config."""
        assistant = await self.get(principal, assistant_id)
        config = {"configurable": assistant["config"]}
        return assistant, await self.registry.get(assistant["graph_id"], config)

    async def update(
        self,
        principal: Principal,
        assistant_id: str | uuid.UUID,
        *,
        graph_id: str | None = None,
        config: dict | None = None,
        context: dict | None = None,
        metadata: dict | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A new version from the latest one; metadata is merged, other fields replaced."""
        self.check_graph(graph_id)
        target = self._parse(assistant_id)
        principal.require_admin("changing assistants")
        config, context = _mirrored(config, context)
        async with self.db.tenant(principal) as conn:
            resolved = await self._resolve(conn, principal, target)
            current = await assistant_store.get_for_update(conn, principal, resolved)
            if current is None:
                raise NotFound(f"assistant {resolved} not found")
            new = {
                "graph_id": graph_id or current["graph_id"],
                "config": current["config"] if config is None else config,
                "context": current["context"] if context is None else context,
                "metadata": {**current["metadata"], **(metadata or {})},
                "name": name or current["name"],
                "description": current["description"] if description is None else description,
            }
            version = await assistant_store.add_version(conn, principal, resolved, new)
            return await assistant_store.write_latest(conn, principal, resolved, version, new)

    async def delete(self, principal: Principal, assistant_id: str | uuid.UUID) -> None:
        target = self._parse(assistant_id)
        principal.require_admin("changing assistants")
        async with self.db.tenant(principal) as conn:
            resolved = await self._resolve(conn, principal, target)
            if not await assistant_store.delete(conn, principal, resolved):
                raise NotFound(f"assistant {resolved} not found")

    async def search(
        self, principal: Principal, *, graph_id: str | None = None, **filters: Any
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page of assistants (see `stores.assistants.search`) and whether more follow."""
        self.check_graph(graph_id)
        async with self.db.tenant(principal) as conn:
            await assistant_store.ensure_defaults(conn, principal, sorted(self.graph_ids))
            return await assistant_store.search(conn, principal, graph_id=graph_id, **filters)

    async def count(self, principal: Principal, **filters: Any) -> int:
        async with self.db.tenant(principal) as conn:
            await assistant_store.ensure_defaults(conn, principal, sorted(self.graph_ids))
            return await assistant_store.count(conn, principal, **filters)

    async def list_versions(
        self,
        principal: Principal,
        assistant_id: str | uuid.UUID,
        *,
        metadata: dict | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        target = self._parse(assistant_id)
        async with self.db.tenant(principal) as conn:
            resolved = await self._resolve(conn, principal, target)
            rows = await assistant_store.list_versions(
                conn, principal, resolved, metadata=metadata, limit=limit, offset=offset
            )
        if not rows and offset == 0:
            raise NotFound(f"assistant {resolved} not found")
        return rows

    async def set_latest(
        self, principal: Principal, assistant_id: str | uuid.UUID, version: int
    ) -> dict[str, Any]:
        target = self._parse(assistant_id)
        principal.require_admin("changing assistants")
        async with self.db.tenant(principal) as conn:
            resolved = await self._resolve(conn, principal, target)
            row = await assistant_store.set_latest(conn, principal, resolved, version)
        if row is None:
            raise NotFound(f"assistant {resolved} version {version} not found")
        return row


async def _get(
    conn: AsyncConnection, principal: Principal, assistant_id: uuid.UUID
) -> dict[str, Any]:
    row = await assistant_store.get(conn, principal, assistant_id)
    if row is None:
        raise NotFound(f"assistant {assistant_id} not found")
    return row

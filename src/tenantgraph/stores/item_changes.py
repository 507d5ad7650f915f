"""What a write group applies: one change per item, after its owner has been resolved.
Shared by the item statements (`item_writes`) and the vector statements (`vectors`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Change"]


@dataclass(slots=True)
class Change:
    """One put (value set) or delete (value None) after ownership has been resolved;
    `vectors` are the put's embedded fields, as (field path, embedding)."""

    owner: str
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any] | None
    ttl: float | None = None
    vectors: list[tuple[str, list[float]]] = field(default_factory=list)

    @property
    def identity(self) -> tuple[str, tuple[str, ...], str]:
        return self.owner, self.namespace, self.key

    def row(self) -> dict[str, Any]:
        return {"owner_id": self.owner, "namespace": list(self.namespace), "key": self.key}

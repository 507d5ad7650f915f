"""Feedback on runs: record (with a credential, or with a run's feedback token), search,
stats, and the user's and org's export and erasure. One transaction per use case.

Errors: FeedbackNotFound → 404 (a run the caller does not see), TokenSpent → 409,
InvalidToken → 403.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from tenantgraph.db.database import Database
from tenantgraph.errors import Conflict, Forbidden, NotFound
from tenantgraph.scope import Principal, Role
from tenantgraph.services.feedback_tokens import FeedbackTokens, InvalidToken
from tenantgraph.stores import feedback as store

__all__ = ["DEFAULT_RETENTION_DAYS", "Feedback", "FeedbackNotFound", "TokenSpent"]

DEFAULT_RETENTION_DAYS = 365


class FeedbackNotFound(NotFound):
    """The run is missing or one the caller may not see (HTTP 404)."""


class TokenSpent(Conflict):
    """A single-use feedback token was used already (HTTP 409)."""


def _require_admin_or_self(principal: Principal, user_id: str) -> None:
    if user_id != principal.user_id and not principal.sees_all_users:
        raise Forbidden("only admins may export or delete another user's feedback")


class Feedback:
    """Feedback events over one database; tokens are checked with `tokens`."""

    def __init__(self, db: Database, tokens: FeedbackTokens) -> None:
        self.db, self.tokens = db, tokens

    async def record(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        event: dict[str, Any],
        *,
        thread_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """Record the caller's `event` on a run they see (on `thread_id`, if given)."""
        async with self.db.tenant(principal) as conn:
            row, _ = await store.insert(conn, principal, run_id, event, thread_id=thread_id)
        if row is None:
            raise FeedbackNotFound("Run not found")
        return row

    async def record_with_token(
        self, token: str, event: dict[str, Any], *, run_id: uuid.UUID | None = None
    ) -> dict[str, Any]:
        """Record `event` for the token's run and key, as the run's creator; a single-use
        token records once. `run_id`, if the client names one, must be the token's."""
        claims = self.tokens.verify(token)
        if run_id is not None and run_id != claims.run_id:
            raise InvalidToken("this feedback token is for another run")
        try:
            principal = Principal(claims.org_id, claims.user_id, Role.MEMBER)
        except ValueError:
            raise InvalidToken("invalid feedback token") from None
        async with self.db.tenant(principal) as conn:
            row, found = await store.insert(
                conn,
                principal,
                claims.run_id,
                {**event, "key": claims.key},
                jti=None if claims.multi else claims.jti,
            )
        if row is None:
            if found:
                raise TokenSpent("this feedback token was used already")
            raise FeedbackNotFound("Run not found")
        return row

    async def search(
        self, principal: Principal, filters: dict[str, Any], *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Events matching `filters`: the caller's own, or the org's for an admin."""
        async with self.db.tenant(principal) as conn:
            return await store.search(conn, principal, filters, limit=limit, offset=offset)

    async def stats(
        self, principal: Principal, filters: dict[str, Any], group_by: str | None
    ) -> list[dict[str, Any]]:
        """Aggregates per group over the events the caller sees (stores/feedback.py)."""
        async with self.db.tenant(principal) as conn:
            return await store.stats(conn, principal, filters, group_by)

    async def export_user(
        self, principal: Principal, user_id: str, *, page_size: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every event `user_id` gave in the org, page by page (admins: anyone's; a user:
        their own)."""
        _require_admin_or_self(principal, user_id)
        after = None
        while True:
            async with self.db.tenant(principal) as conn:
                rows = await store.export_page(conn, user_id, after, page_size)
            for row in rows:
                yield row
            if len(rows) < page_size:
                return
            after = (rows[-1]["created_at"], rows[-1]["feedback_id"])

    async def delete_user(self, principal: Principal, user_id: str) -> int:
        """Erase every event `user_id` gave in the org; returns the count."""
        _require_admin_or_self(principal, user_id)
        async with self.db.tenant(principal) as conn:
            return await store.delete_user_events(conn, user_id)

    async def delete_org(self, principal: Principal) -> int:
        """Erase every event of the org (admins only); returns the count."""
        if not principal.sees_all_users:
            raise Forbidden("only admins may delete the organisation's feedback")
        async with self.db.tenant(principal) as conn:
            return await store.delete_org_events(conn)

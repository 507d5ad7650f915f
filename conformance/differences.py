"""The deliberate differences between tenantgraph and `langgraph dev`: each is reported as
documented, with its reason, instead of failing the run.

An entry matches a difference when the SDK (`"python"`, `"js"` or `"*"`), the call label, the
path (list indexes written `[*]`; `status` and `error` for those two columns) and the kind
(`missing`: only langgraph dev has it, `extra`: only tenantgraph, `value`, or `*`) all match;
`call` and `path` are shell-style patterns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deliberate:
    call: str
    path: str
    kind: str
    reason: str
    sdk: str = "*"


NO_AUTH = (
    "langgraph dev runs without authentication, so its user id is the empty string; every"
    " tenantgraph request has an authenticated user (here `dev`)"
)
DELIBERATE: list[Deliberate] = [
    Deliberate(
        "*",
        "*.metadata.owner",
        "extra",
        "tenantgraph stamps the creator of a thread into its metadata (threads belong to the"
        " user who made them); an added key, which clients ignore",
    ),
    Deliberate(
        "*",
        "*.metadata.org_id",
        "extra",
        "tenantgraph writes the caller's org into `configurable`, and LangGraph copies"
        " `configurable` into checkpoint metadata; an added key",
    ),
    Deliberate(
        "*",
        "*.metadata.user_id",
        "extra",
        "tenantgraph writes the caller's user into `configurable` on every write, state"
        " updates included, and LangGraph copies it into checkpoint metadata; an added key",
    ),
    Deliberate("*", "*.user_id", "value", NO_AUTH),
    Deliberate("*", "*.langgraph_auth_user_id", "value", NO_AUTH),
    Deliberate(
        "*:*",
        "$.detail",
        "value",
        "error messages are each server's own wording (tenantgraph names the object); the"
        " status and the SDK's error class, compared separately, are what clients act on",
    ),
]

"""A custom-auth app that verifies the test suite's HS256 JWTs itself, stamps thread owners
and filters thread reads by owner: the isolation matrix runs against it unchanged."""

import os

import jwt
from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    _, _, token = (authorization or "").partition(" ")
    try:
        claims = jwt.decode(token, os.environ["TENANTGRAPH_JWT_SECRET"], algorithms=["HS256"])
    except jwt.PyJWTError as exc:
        raise Auth.exceptions.HTTPException(status_code=401, detail=str(exc)) from exc
    return {"identity": claims["sub"], "org_id": claims["org_id"], "org_role": claims["org_role"]}


@auth.on.threads.create
async def stamp_owner(ctx: Auth.types.AuthContext, value: dict) -> Auth.types.FilterType:
    value.setdefault("metadata", {})["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.threads
async def owner_only(ctx: Auth.types.AuthContext, value: dict) -> Auth.types.FilterType:
    return {"owner": ctx.user.identity}

"""A LangGraph Platform custom-auth app, written as the Platform's docs write one: tokens
name users; threads are stamped with their owner and read back through an owner filter;
deleting a thread is denied. tenantgraph loads it unchanged from `auth.path`."""

from langgraph_sdk import Auth

ORG_A, ORG_B = "authapp-acme", "authapp-globex"
READ_ONLY = ["threads:read", "assistants:read"]

USERS = {
    "alice-token": {
        "identity": "alice",
        "org_id": ORG_A,
        "permissions": ["profile"],
        "display_name": "Alice A.",
        "team": "blue",
    },
    "anna-token": {"identity": "anna", "org_id": ORG_A, "org_role": "admin"},
    "olga-token": {"identity": "olga", "org_id": ORG_A, "org_role": "owner"},
    "bea-token": {"identity": "bea", "org_id": ORG_B, "org_role": "admin"},
    "reader-token": {"identity": "rita", "org_id": ORG_A, "permissions": READ_ONLY},
    "nomad-token": {"identity": "nomad"},
    # Identities tenantgraph must refuse whatever the handler says.
    "shared-token": {"identity": "shared", "org_id": ORG_A},
    "svc-token": {"identity": "svc:ci", "org_id": ORG_A},
    "listed-org-token": {"identity": "alice", "org_id": [ORG_A]},
    "numbered-token": {"identity": 42, "org_id": ORG_A},
}

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    if not authorization:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Missing token")
    _, _, token = authorization.partition(" ")
    if token == "banned-token":
        raise Auth.exceptions.HTTPException(status_code=403, detail="This account is banned")
    user = USERS.get(token)
    if user is None:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return user


@auth.on.threads.create
async def on_thread_create(
    ctx: Auth.types.AuthContext, value: Auth.types.on.threads.create.value
) -> Auth.types.FilterType:
    metadata = value.setdefault("metadata", {})
    metadata["owner"] = ctx.user.identity
    metadata["stamped_by"] = "custom-auth"
    return {"owner": ctx.user.identity}


@auth.on.threads.read
@auth.on.threads.search
@auth.on.threads.update
@auth.on.threads.create_run
async def on_thread_read(ctx: Auth.types.AuthContext, value: dict) -> Auth.types.FilterType:
    return {"owner": ctx.user.identity}


@auth.on.threads.delete
async def deny_delete(ctx: Auth.types.AuthContext, value: dict) -> bool:
    return False

"""Hot, short-lived tenant state in Valkey/Redis: rate limits, session windows, episodic
memory and conversation flags.

Every key is built by `tenantgraph.scope.redis_key` (so it starts with the org's hash tag),
every write sets a TTL, and every multi-key operation is one script or MULTI in one slot.
"""

-- Scopes narrow what an API key may do (NULL: everything its role allows, README "Scopes");
-- `assistants` lists the assistants (ids or graph names) it may run (NULL: every one).
ALTER TABLE api_keys ADD COLUMN scopes text[], ADD COLUMN assistants text[];

-- Authentication reads them with the key (the return type changes: drop and create).
DROP FUNCTION resolve_api_key(bytea);
CREATE FUNCTION resolve_api_key(hash bytea)
RETURNS TABLE (
    org_id text, key_id uuid, user_id text, role text, scopes text[], assistants text[]
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    SELECT k.org_id, k.key_id, k.user_id, k.role, k.scopes, k.assistants
    FROM api_keys k
    WHERE k.key_hash = hash AND k.revoked_at IS NULL
$$;
REVOKE ALL ON FUNCTION resolve_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION resolve_api_key(bytea) TO tenantgraph_app;

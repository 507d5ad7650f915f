-- An org's channel connections: where its users reach an assistant (a web chat, a Slack
-- workspace, a WhatsApp number). `external_id` names the connection on the provider's side
-- (Slack's team_id, WhatsApp's phone_number_id); `config` holds the fields that are not
-- secret; `secrets` is a Fernet token of the secret fields (services/channels.py), never
-- readable without the server's key.
CREATE TABLE channels (
    org_id        text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    channel_id    uuid NOT NULL,
    type          text NOT NULL CHECK (type IN ('web', 'slack', 'whatsapp')),
    name          text NOT NULL,
    assistant_id  text NOT NULL,
    external_id   text,
    config        jsonb NOT NULL DEFAULT '{}',
    secrets       text NOT NULL,
    secret_fields text[] NOT NULL DEFAULT '{}',
    -- WhatsApp's subscription check names only a verify token: its keyed digest.
    verify_digest text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, channel_id),
    UNIQUE (org_id, type, name)
);
-- The inbound lookup (resolve_channel) searches every org by provider id.
CREATE INDEX channels_external ON channels (type, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX channels_verify ON channels (verify_digest) WHERE verify_digest IS NOT NULL;

SELECT enable_tenant_rls('channels');

-- A provider's webhook names its workspace or number, not an org: the connections that
-- claim it, in every org, with their encrypted secrets. The caller keeps only the one
-- whose secret verifies the request's signature.
CREATE FUNCTION resolve_channel(channel_type text, provider_id text)
RETURNS TABLE (org_id text, channel_id uuid, assistant_id text, config jsonb, secrets text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    SELECT c.org_id, c.channel_id, c.assistant_id, c.config, c.secrets
    FROM channels c
    WHERE c.type = channel_type AND c.external_id = provider_id
    ORDER BY c.created_at, c.org_id
    LIMIT 10
$$;
REVOKE ALL ON FUNCTION resolve_channel(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION resolve_channel(text, text) TO tenantgraph_app;

-- WhatsApp's subscription check (`hub.verify_token`) names no number and no org: whether
-- some connection holds this verify token (by its keyed digest), and nothing else.
CREATE FUNCTION channel_verify_token_known(digest text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM channels c WHERE c.verify_digest = digest)
$$;
REVOKE ALL ON FUNCTION channel_verify_token_known(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION channel_verify_token_known(text) TO tenantgraph_app;

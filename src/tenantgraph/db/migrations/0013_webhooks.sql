-- An org's webhook settings: the secret its webhooks are signed with (created on first use,
-- rotated by its owners and admins) and the hosts its webhooks may name (NULL: any host
-- the server's outbound rules allow; patterns are host names or `*.domain`).
CREATE TABLE org_webhooks (
    org_id         text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    secret         text NOT NULL,
    allowed_hosts  text[],
    created_at     timestamptz NOT NULL DEFAULT now(),
    rotated_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id)
);

SELECT enable_tenant_rls('org_webhooks');

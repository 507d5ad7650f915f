-- Per-org overrides of the global rate-limit buckets (tenantgraph.ephemeral.ratelimit).
-- One row per overridden bucket; a missing row means the global default applies.
CREATE TABLE rate_limits (
    org_id          text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    bucket          text NOT NULL CHECK (bucket IN (
                        'org_requests', 'user_requests', 'api_key_requests',
                        'org_runs', 'user_runs')),
    limit_count     integer NOT NULL CHECK (limit_count > 0),
    window_seconds  integer NOT NULL CHECK (window_seconds > 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, bucket)
);

SELECT enable_tenant_rls('rate_limits');

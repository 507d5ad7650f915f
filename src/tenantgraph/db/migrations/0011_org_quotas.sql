-- Per-org overrides of the quotas: the store's (the config file's `store.limits`) and the
-- crons a user may own. One row per overridden quota; a missing row means the process's
-- default applies.
CREATE TABLE org_quotas (
    org_id       text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    quota        text NOT NULL CHECK (quota IN ('store_items', 'store_bytes', 'crons_per_user')),
    limit_value  bigint NOT NULL CHECK (limit_value > 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, quota)
);

SELECT enable_tenant_rls('org_quotas');

-- As in 0002, but the org's overrides replace the defaults the caller passes in: a write
-- reads them in the statement it already sends, so an override costs no round trip.
CREATE OR REPLACE FUNCTION store_check_quota(
    items_delta bigint, bytes_delta bigint, max_items bigint, max_bytes bigint
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    used_items bigint;
    used_bytes bigint;
    item_limit bigint := max_items;
    byte_limit bigint := max_bytes;
BEGIN
    IF items_delta <= 0 AND bytes_delta <= 0 THEN
        RETURN;
    END IF;
    SELECT coalesce(max(limit_value) FILTER (WHERE quota = 'store_items'), item_limit),
           coalesce(max(limit_value) FILTER (WHERE quota = 'store_bytes'), byte_limit)
    INTO item_limit, byte_limit
    FROM org_quotas WHERE org_id = current_setting('tenantgraph.org_id');
    SELECT coalesce(sum(items), 0), coalesce(sum(bytes), 0) INTO used_items, used_bytes
    FROM store_usage WHERE org_id = current_setting('tenantgraph.org_id');
    IF item_limit IS NOT NULL AND items_delta > 0 AND used_items + items_delta > item_limit THEN
        RAISE EXCEPTION 'store item quota exceeded: % of % items', used_items + items_delta,
            item_limit USING ERRCODE = 'TGQ01';
    END IF;
    IF byte_limit IS NOT NULL AND bytes_delta > 0 AND used_bytes + bytes_delta > byte_limit THEN
        RAISE EXCEPTION 'store byte quota exceeded: % of % bytes', used_bytes + bytes_delta,
            byte_limit USING ERRCODE = 'TGQ01';
    END IF;
END
$$;

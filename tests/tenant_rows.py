"""One row in every tenant table for an org: the fixture the isolation tests attack."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection

# Stable ids so the same natural key exists in every org that is seeded.
ASSISTANT_ID = uuid.UUID("00000000-0000-4000-8000-00000000a001")
THREAD_ID = uuid.UUID("00000000-0000-4000-8000-00000000f001")
RUN_ID = uuid.UUID("00000000-0000-4000-8000-00000000b001")
CRON_ID = uuid.UUID("00000000-0000-4000-8000-00000000c001")
KEY_ID = uuid.UUID("00000000-0000-4000-8000-00000000d001")
FEEDBACK_ID = uuid.UUID("00000000-0000-4000-8000-00000000e001")
EXPERIMENT_ID = uuid.UUID("00000000-0000-4000-8000-00000000e002")

# (table, statement) in dependency order; %(org)s is the org being seeded.
SEED: list[tuple[str, str]] = [
    ("orgs", "INSERT INTO orgs (org_id, name, slug) VALUES (%(org)s, %(org)s, %(org)s)"),
    (
        "memberships",
        "INSERT INTO memberships (org_id, user_id, role) VALUES (%(org)s, 'alice', 'admin')",
    ),
    (
        "api_keys",
        "INSERT INTO api_keys (org_id, key_id, user_id, role, key_hash)"
        " VALUES (%(org)s, %(key)s, 'alice', 'admin', sha256(convert_to(%(org)s::text, 'UTF8')))",
    ),
    (
        "assistants",
        "INSERT INTO assistants (org_id, assistant_id, graph_id, name)"
        " VALUES (%(org)s, %(assistant)s, 'agent', 'a')",
    ),
    (
        "assistant_versions",
        "INSERT INTO assistant_versions (org_id, assistant_id, version, graph_id, name)"
        " VALUES (%(org)s, %(assistant)s, 1, 'agent', 'a')",
    ),
    (
        "threads",
        "INSERT INTO threads (org_id, thread_id, owner_id) VALUES (%(org)s, %(thread)s, 'alice')",
    ),
    (
        "runs",
        "INSERT INTO runs (org_id, run_id, thread_id, assistant_id, owner_id)"
        " VALUES (%(org)s, %(run)s, %(thread)s, %(assistant)s, 'alice')",
    ),
    ("run_queue", "INSERT INTO run_queue (org_id, run_id) VALUES (%(org)s, %(run)s)"),
    (
        "checkpoints",
        "INSERT INTO checkpoints (org_id, thread_id, checkpoint_id, checkpoint_type, checkpoint)"
        " VALUES (%(org)s, %(thread)s, 'c1', 'msgpack', '\\x00')",
    ),
    (
        "checkpoint_blobs",
        "INSERT INTO checkpoint_blobs (org_id, thread_id, channel, version, blob_type, blob)"
        " VALUES (%(org)s, %(thread)s, 'messages', '1', 'msgpack', '\\x00')",
    ),
    (
        "checkpoint_writes",
        "INSERT INTO checkpoint_writes"
        " (org_id, thread_id, checkpoint_id, task_id, idx, channel, blob_type, blob)"
        " VALUES (%(org)s, %(thread)s, 'c1', 't1', 0, 'messages', 'msgpack', '\\x00')",
    ),
    (
        "crons",
        "INSERT INTO crons (org_id, cron_id, assistant_id, owner_id, schedule)"
        " VALUES (%(org)s, %(cron)s, %(assistant)s, 'alice', '* * * * *')",
    ),
    (
        "store_items",
        "INSERT INTO store_items (org_id, owner_id, namespace, key, value)"
        " VALUES (%(org)s, 'alice', '{memories}', 'k', '{\"v\": 1}')",
    ),
    (
        "store_namespaces",
        "INSERT INTO store_namespaces (org_id, owner_id, namespace)"
        " VALUES (%(org)s, 'alice', '{memories}')",
    ),
    (
        "rate_limits",
        "INSERT INTO rate_limits (org_id, bucket, limit_count, window_seconds)"
        " VALUES (%(org)s, 'user_runs', 5, 60)",
    ),
    (
        "store_vectors",
        "INSERT INTO store_vectors (org_id, owner_id, ns_path, key, field, embedding)"
        " VALUES (%(org)s, 'alice', 'memories.', 'k', '$', '[1, 0, 0]')",
    ),
    ("store_usage", "INSERT INTO store_usage (org_id, shard, items) VALUES (%(org)s, 0, 1)"),
    (
        "store_vector_counts",
        "INSERT INTO store_vector_counts (org_id, owner_id, shard, added)"
        " VALUES (%(org)s, 'alice', 0, 1)",
    ),
    (
        "store_ann_owners",
        "INSERT INTO store_ann_owners (org_id, owner_id) VALUES (%(org)s, 'alice')",
    ),
    (
        "org_quotas",
        "INSERT INTO org_quotas (org_id, quota, limit_value) VALUES (%(org)s, 'store_items', 5)",
    ),
    (
        "idempotency_records",
        "INSERT INTO idempotency_records (org_id, user_id, role, credential, idem_key,"
        " fingerprint, state, status, headers, body, expires_at) VALUES (%(org)s, 'alice',"
        " 'admin', 'token', 'k', 'fp', 'done', 201, '[]', '\\x00', now() + interval '1 day')",
    ),
    (
        "org_webhooks",
        "INSERT INTO org_webhooks (org_id, secret, allowed_hosts)"
        " VALUES (%(org)s, 'whsec_' || %(org)s, '{example.com}')",
    ),
    (
        "feedback",
        "INSERT INTO feedback (org_id, feedback_id, run_id, thread_id, assistant_id, user_id,"
        " key, score) VALUES (%(org)s, %(feedback)s, %(run)s, %(thread)s, %(assistant)s,"
        " 'alice', 'thumbs', 1)",
    ),
    (
        "experiments",
        "INSERT INTO experiments (org_id, experiment_id, name, variants, metric, created_by)"
        " VALUES (%(org)s, %(experiment)s, 'e', jsonb_build_array(jsonb_build_object("
        "'name', 'a', 'assistant_id', %(assistant)s::text, 'weight', 1)),"
        ' \'{"key": "thumbs", "goal": "maximize"}\', \'alice\')',
    ),
    (
        "experiment_transitions",
        "INSERT INTO experiment_transitions (org_id, experiment_id, seq, from_status,"
        " to_status, user_id) VALUES (%(org)s, %(experiment)s, 1, 'draft', 'running', 'alice')",
    ),
    (
        "experiment_assignments",
        "INSERT INTO experiment_assignments (org_id, experiment_id, user_id, variant)"
        " VALUES (%(org)s, %(experiment)s, 'alice', 'a')",
    ),
    (
        "channels",
        "INSERT INTO channels (org_id, channel_id, type, name, assistant_id, external_id,"
        " secrets) VALUES (%(org)s, %(thread)s, 'slack', 'seed', 'agent', 'T1', 'sealed')",
    ),
]


def params(org: str) -> dict[str, object]:
    return {
        "org": org,
        "assistant": ASSISTANT_ID,
        "thread": THREAD_ID,
        "run": RUN_ID,
        "cron": CRON_ID,
        "key": KEY_ID,
        "feedback": FEEDBACK_ID,
        "experiment": EXPERIMENT_ID,
    }


async def seed(conn: AsyncConnection, org: str) -> None:
    """Insert SEED for `org` on a connection whose tenant is already `org`."""
    for _, statement in SEED:
        await conn.execute(statement, params(org))

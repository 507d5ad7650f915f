-- Experiments over an org's assistants: variants (name, assistant, weight) and the metric
-- (feedback key, goal); `status` follows draft → running ⇄ paused → completed → archived,
-- each transition recorded in experiment_transitions. A user's variant is fixed at their
-- first assignment (experiment_assignments), so later weight changes move no one.
CREATE TABLE experiments (
    org_id         text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    experiment_id  uuid NOT NULL,
    name           text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    description    text,
    status         text NOT NULL DEFAULT 'draft'
                   CHECK (status IN ('draft', 'running', 'paused', 'completed', 'archived')),
    variants       jsonb NOT NULL,
    metric         jsonb NOT NULL,
    winner         text,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    start_time     timestamptz,
    end_time       timestamptz,
    PRIMARY KEY (org_id, experiment_id),
    UNIQUE (org_id, name)
);

CREATE TABLE experiment_transitions (
    org_id         text NOT NULL,
    experiment_id  uuid NOT NULL,
    seq            integer NOT NULL,
    from_status    text NOT NULL,
    to_status      text NOT NULL,
    user_id        text NOT NULL,
    reason         text,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, experiment_id, seq),
    FOREIGN KEY (org_id, experiment_id) REFERENCES experiments (org_id, experiment_id)
        ON DELETE CASCADE
);

CREATE TABLE experiment_assignments (
    org_id         text NOT NULL,
    experiment_id  uuid NOT NULL,
    user_id        text NOT NULL,
    variant        text NOT NULL,
    assigned_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, experiment_id, user_id),
    FOREIGN KEY (org_id, experiment_id) REFERENCES experiments (org_id, experiment_id)
        ON DELETE CASCADE
);

-- Results read the feedback of an experiment by variant.
CREATE INDEX feedback_experiment ON feedback (org_id, experiment_id, key, variant)
    INCLUDE (score) WHERE experiment_id IS NOT NULL;
-- Results count an experiment's runs.
CREATE INDEX runs_experiment ON runs (org_id, ((metadata ->> 'experiment_id')))
    WHERE metadata ? 'experiment_id';

SELECT enable_tenant_rls(t) FROM unnest(ARRAY[
    'experiments', 'experiment_transitions', 'experiment_assignments'
]::regclass[]) AS t;

"""Running graphs: the graph registry, the tenant checkpointer, workers, the executor.

Modules, in the order a run meets them (the run use cases are in services/runs.py):
  graphs.py        GraphRegistry: the config file's `graphs`, imported at startup.
  worker.py        Worker: claims queued runs of every org, leases, cancel, crash rule,
                   fires crons (a callable it is given). Started and stopped by the app
                   lifespan or `tenantgraph worker`.
  executor.py      One run in its tenant: config layering, astream → Valkey, final status.
  events.py        Wire encoding of stream chunks (as the LangGraph API names them), the
                   Valkey stream per run, the reader used for SSE and Last-Event-ID.
  checkpointer.py  TenantCheckpointer: LangGraph checkpoints in tenant tables (its SQL is
                   in stores/checkpoints.py).
  state_values.py  Thread state in the API's shape, from LangGraph's StateSnapshot.
  webhooks.py      WebhookSender: POSTs a run's `webhook`, signed, once the worker has
                   recorded its end (the worker's `on_end` hook).
  outbound.py      OutboundClient: the one HTTP client for tenants' URLs (SSRF-guarded,
                   timeouts, retries); opened and closed with the process's resources.

Nothing here imports services/ or resources: collaborators are passed in.
"""

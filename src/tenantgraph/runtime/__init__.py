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

Nothing here imports services/ or resources: collaborators are passed in.
"""

"""Running graphs: the graph registry, the tenant checkpointer, runs, workers, crons.

Modules, in the order a run meets them:
  graphs.py        GraphRegistry: the config file's `graphs`, imported at startup.
  runs.py          Runs: create (multitask strategies), get, list, delete, cancel, join,
                   events. What the HTTP routes call.
  worker.py        Worker: claims queued runs of every org, leases, cancel, crash rule,
                   fires crons. Started and stopped by the app lifespan or
                   `tenantgraph worker` (serve_worker).
  executor.py      One run in its tenant: config layering, astream → Valkey, final status.
  events.py        Wire encoding of stream chunks (as the LangGraph API names them), the
                   Valkey stream per run, the reader used for SSE and Last-Event-ID.
  checkpointer.py  TenantCheckpointer: LangGraph checkpoints in tenant tables.
  state.py         ThreadStates: get_state, history, update_state, copy.
  crons.py         Crons: CRUD and firing exactly once per due date.

Errors for the HTTP layer: RunNotFound → 404, RunConflict → 409, InvalidRun → 400
(pydantic's ValidationError of RunCreate → 422).
"""

"""Running graphs: the graph registry, the tenant checkpointer, runs, workers, crons."""

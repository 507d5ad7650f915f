-- A finished run's output: what `/join` and `/runs/wait` answer (the last `values` with its
-- interrupts, or `{"__error__": …}`), so they answer it after the run's Valkey stream is
-- gone (expired, or lost with a Valkey restart). NULL for runs that ended before this.
ALTER TABLE runs ADD COLUMN output jsonb;

-- A cron may name an experiment: each firing runs its owner's variant of it at that moment
-- (the sticky one while it runs, the winner or first variant after), as a run created then
-- would. `assistant_id` keeps the variant the owner had when the cron was created.
ALTER TABLE crons ADD COLUMN experiment_id uuid;
ALTER TABLE crons ADD FOREIGN KEY (org_id, experiment_id)
    REFERENCES experiments (org_id, experiment_id) ON DELETE CASCADE;

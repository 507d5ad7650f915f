"""SQL for each tenant resource. Every function takes the caller's Principal first."""

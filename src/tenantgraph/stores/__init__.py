"""SQL, one module per resource; every function runs on a tenant connection."""

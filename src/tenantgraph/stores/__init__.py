"""SQL for tenant data, one module per resource; nothing here knows about HTTP."""

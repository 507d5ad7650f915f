"""Use cases: each opens one tenant transaction and calls the stores (docs/architecture.md)."""

"""tenantgraph: a multi-tenant agent server for LangGraph applications."""

from importlib.metadata import version

__version__ = version("tenantgraph")

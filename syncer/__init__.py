"""syncer: a declarative GitOps sync engine for Docker."""

__version__ = "0.1.0"

"""The HTTP API: an app factory, thin routes and one table mapping errors to responses."""

from r2v.api.app import create_app

__all__ = ["create_app"]

"""The gateway: follows the tasks of models served by an upstream (see `runner`)."""

from r2v.gateway.runner import Gateway
from r2v.gateway.shared import GatewayConfig

__all__ = ["Gateway", "GatewayConfig"]

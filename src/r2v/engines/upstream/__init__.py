"""The upstream engine: a model forwarded to a hosted service, its result mirrored.

Two dialects: `ark` (BytePlus ModelArk / Volcengine Ark content-generation tasks) and
`unified` (any server of r2v's own API). The engine holds no render slot; the gateway
(`r2v.gateway`) follows its tasks.
"""

from r2v.engines.upstream.ark import ark_failure
from r2v.engines.upstream.client import Transient, UpstreamClient
from r2v.engines.upstream.engine import UpstreamEngine
from r2v.engines.upstream.request import (
    Malformed,
    UpstreamRequest,
    UpstreamStatus,
    UpstreamTarget,
    rewrite_mentions,
)
from r2v.engines.upstream.unified import unified_failure

__all__ = [
    "Malformed",
    "Transient",
    "UpstreamClient",
    "UpstreamEngine",
    "UpstreamRequest",
    "UpstreamStatus",
    "UpstreamTarget",
    "ark_failure",
    "rewrite_mentions",
    "unified_failure",
]

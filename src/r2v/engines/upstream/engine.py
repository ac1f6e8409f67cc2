"""The upstream engine of one model: where its tasks go, and how long they usually take.

Unlike the renderers it has no `generate`: an upstream task holds no render slot. The
gateway follows every upstream task of a process from one event loop, sending each to the
first of `targets` that takes it (the rest are fallbacks for 429/5xx or no answer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from r2v.engines.base import EngineRequest, Preset
from r2v.engines.upstream.request import UpstreamTarget

# Typical seconds of a hosted Seedance 2.0 task for 5 s of video (queue excluded): the
# progress estimate of an upstream that reports none rises along this.
_TYPICAL_SECONDS: dict[str, float] = {"standard": 120.0, "fast": 60.0}


@dataclass(frozen=True)
class UpstreamEngine:
    """A model served by upstreams, in order of preference."""

    model: str
    preset: Preset
    targets: tuple[UpstreamTarget, ...]
    name: str = "upstream"

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("an upstream engine needs at least one upstream")

    def target(self, identity: str | None) -> UpstreamTarget | None:
        """The configured upstream a task row names, or None when it is no longer configured."""
        return next((t for t in self.targets if t.identity == identity), None)

    def typical_seconds(self, duration: int) -> float:
        """How long the upstream usually takes for a video of `duration` s (-1: up to 15 s)."""
        seconds = duration if duration > 0 else 10
        return _TYPICAL_SECONDS[self.preset] * max(seconds, 5) / 5

    def estimate_seconds(self, request: EngineRequest) -> int:
        """The usual upstream time for the request's duration, in whole seconds."""
        return math.ceil(self.typical_seconds(request.duration))

    def describe(self) -> Sequence[str]:
        """One line per upstream, for the start-up log (never the key)."""
        return [
            f"{'upstream' if n == 0 else f'fallback {n}'}: {t.api} {t.url} model {t.model}"
            for n, t in enumerate(self.targets)
        ]

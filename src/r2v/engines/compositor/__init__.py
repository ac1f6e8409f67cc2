"""The compositor engine: a deterministic, CPU-only renderer of reference-to-video requests.

Modules, by concept: `storyboard` (the plan, built before any pixel), `motion` (camera
moves over stills), `ambient` (seeded visuals for text-only prompts), `shots` (frame
sources per shot), `sound` (the soundtrack), `engine` (the `Engine` implementation: the
steps in order and the frame loop that feeds the encoder).
"""

from r2v.engines.compositor.engine import CompositorEngine

__all__ = ["CompositorEngine"]

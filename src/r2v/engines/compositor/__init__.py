"""The compositor engine: a deterministic, CPU-only renderer of reference-to-video requests.

Modules, by concept. Planning, before any pixel: `phrases` (the compositor's vocabulary,
English and Chinese; mentions and frame pins are `r2v.grammar`'s, shared by every reader
of a prompt) and `prompt` (the prompt read into beats), `casting` (which shots, in what order,
how long the video), `timeline` (cuts and dissolves), `motion` (camera moves over stills),
`transfer` (a reference video's camera motion), `scenery` (the place and light a prompt
without pictures shows), `storyboard` (the plan). Sound: `onsets`, `loudness`, `clips`,
`score`, `sound`; `references` keeps decoded references for both. Drawing: `shots` (frame
sources), `painter` (a scene drawn from the words, with `skies`, `terrain`, `sea`,
`skyline`, `space` and its moving parts, `animation`), `ambient` (the abstract scene for
words that name no place), and `engine`
(the `Engine` implementation: the steps in order and the frame loop that feeds the encoder).
"""

from r2v.engines.compositor.engine import CompositorEngine

__all__ = ["CompositorEngine"]

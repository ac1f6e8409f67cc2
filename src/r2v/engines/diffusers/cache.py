"""diffusers' FirstBlockCache, made correct for the VACE transformer.

FirstBlockCache runs the first transformer block at every step; when its residual barely
changed since the last full step, it skips the other blocks and adds the residual they
produced then. The VACE transformer adds each VACE block's hint to the hidden states
*between* blocks, outside the blocks the cache hooks. So the cached residual already holds
the hints of the step it was recorded at, and on a skipped step the forward adds the
current hints again: every hint counts twice (measured: a step skipped on exactly the same
inputs as the full step before it comes out different, by as much as the output's scale).

The correction: after every full step, subtract from the cached residual the hints that
step added inside the cached span (all but one added after the last block, which the
forward adds again anyway). A skipped step then adds exactly the current hints once, which
is what a full step would do.
"""

from __future__ import annotations

from typing import Any

from r2v.errors import EngineUnavailable

_LEADER_HOOK = "fbc_leader_block_hook"  # diffusers.hooks.first_block_cache's name for it


def enable_first_block_cache(transformer: Any, threshold: float) -> None:
    """Apply FirstBlockCache at `threshold` to a Wan (VACE) transformer, hints counted once."""
    from diffusers.hooks import FirstBlockCacheConfig, HookRegistry

    transformer.enable_cache(FirstBlockCacheConfig(threshold=threshold))
    layers = list(getattr(transformer.config, "vace_layers", None) or [])
    if not layers:
        return  # a plain Wan transformer adds nothing between blocks
    leader = HookRegistry.check_if_exists_or_initialize(transformer.blocks[0]).get_hook(
        _LEADER_HOOK
    )
    if leader is None or not hasattr(leader, "state_manager"):
        raise EngineUnavailable(
            "this diffusers version's FirstBlockCache cannot be corrected for VACE's hints; "
            "set R2V_MODELS__<MODEL>__CACHE=none"
        )
    last = len(transformer.blocks) - 1
    hints: list[Any] = []

    def record_hint(_block: Any, _args: Any, output: Any) -> None:
        hints.append(output[0])  # a VACE block returns (hint, control states for the next)

    def forget_hints(_module: Any, _args: Any, _kwargs: Any) -> None:
        hints.clear()

    def correct_residual(_module: Any, _args: Any, kwargs: dict[str, Any], _out: Any) -> None:
        state = leader.state_manager.get_state()
        if state.should_compute and state.tail_block_residuals is not None:
            scales = kwargs.get("control_hidden_states_scale")
            residual, encoder = state.tail_block_residuals
            for index, (layer, hint) in enumerate(zip(layers, hints, strict=True)):
                if layer != last:
                    scale = 1.0 if scales is None else scales[index]
                    residual = residual - hint.to(residual.device) * scale
            state.tail_block_residuals = (residual, encoder)
        hints.clear()

    for block in transformer.vace_blocks:
        block.register_forward_hook(record_hint)
    transformer.register_forward_pre_hook(forget_hints, with_kwargs=True)
    transformer.register_forward_hook(correct_residual, with_kwargs=True)

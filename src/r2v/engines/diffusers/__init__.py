"""The diffusers engine: Wan VACE reference-to-video on the operator's GPU.

Importing this package imports neither torch nor diffusers (`r2v[diffusers]` installs
them); `DiffusersEngine.load()` does, and says what to install when they are missing.
"""

from r2v.engines.diffusers.config import DiffusersConfig
from r2v.engines.diffusers.engine import DiffusersEngine

__all__ = ["DiffusersConfig", "DiffusersEngine"]

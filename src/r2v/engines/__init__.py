"""Renderers behind one `Engine` protocol: one module (or package) per engine family."""

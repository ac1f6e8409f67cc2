"""r2v: a self-hosted server for the Seedance 2.0 multimodal reference-to-video API."""

__version__ = "0.1.0"

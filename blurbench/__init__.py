"""blurbench: a reproducibility harness for blur in variational autoencoders."""

__version__ = "0.1.0"

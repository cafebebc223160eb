"""sif-lifecycle: long-term signature lifecycle management for SIF container images."""

__version__ = "0.1.0"

"""Catalog data (GPUs, models, runtimes), loaded from packaged files and validated once."""

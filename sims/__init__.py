"""Thin Hydra entry points, one per study: ``python -m sims.<study>``."""

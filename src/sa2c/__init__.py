"""Reproduction harness for "Supervised Advantage Actor-Critic for Recommender Systems" (SNQN, SA2C)."""

__version__ = "0.1.0"

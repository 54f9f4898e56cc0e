"""Reproduction harness for "Supervised Advantage Actor-Critic for Recommender Systems" (SNQN, SA2C)."""

import os

# Same seed, same machine, same numbers: without this, MKL (torch's CPU BLAS) may pick different kernels from run
# to run (memory alignment, threads chosen at run time), which changes the last bits of matrix products. Strict
# conditional numerical reproducibility fixes the kernels; on this project's CPUs it cost no measurable speed
# (docs/performance.md). MKL reads the variable at its first call, so it is set here,
# before any product; an explicit MKL_CBWR in the environment wins.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"

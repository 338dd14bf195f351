"""RISE: robust imitation by stitching from experts (offline RL with non-expert data)."""

__version__ = "0.1.0"

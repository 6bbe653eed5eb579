"""Frozen data shared by every layer: snapshots, changes, findings. No I/O, no networkx."""

"""Pure diff of two snapshots by Mendix identity."""

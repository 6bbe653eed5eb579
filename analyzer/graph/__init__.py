"""The model graph of one snapshot (networkx) and the queries rules need."""

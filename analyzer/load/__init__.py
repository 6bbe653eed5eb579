"""The only layer that reads input files: sources in, frozen :class:`Snapshot` out."""

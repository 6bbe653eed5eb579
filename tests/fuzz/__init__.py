"""Fuzz targets for mxota's input readers (issue #5); run them with ``python -m tests.fuzz``."""

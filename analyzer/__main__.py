"""``python -m analyzer`` runs the mxota command line."""

from analyzer.cli import main

main()

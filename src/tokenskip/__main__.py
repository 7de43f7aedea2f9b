"""``python -m tokenskip`` runs the CLI."""

from tokenskip.cli import main

main()

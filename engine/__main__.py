"""``python -m engine`` runs the Threadline CLI."""

from engine.cli import main

main()

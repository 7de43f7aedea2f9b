"""``python -m tokenskip`` runs the CLI."""

from tokenskip.cli import main

if __name__ == "__main__":  # spawned worker processes re-import this module as __mp_main__
    main()

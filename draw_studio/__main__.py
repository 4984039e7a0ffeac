"""``python -m draw_studio`` runs the command line."""

from .cli import main

raise SystemExit(main())

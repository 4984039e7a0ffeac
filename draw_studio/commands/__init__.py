"""One module per ``draw-studio`` sub-command: ``add_parser(subparsers)`` and ``run(args)``."""

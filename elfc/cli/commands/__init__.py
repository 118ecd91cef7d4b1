"""One module per ``elfc`` command, each with ``configure(name, parser)`` and ``run(args)``."""

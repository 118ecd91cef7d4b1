"""The ``elfc`` command line: ``main`` parses and dispatches, ``commands/`` holds one module
per command (imported only when chosen, so ``elfc --help`` starts fast), ``progress`` draws
``elfc run``'s live display. Nothing below ``elfc.cli`` imports it.
"""

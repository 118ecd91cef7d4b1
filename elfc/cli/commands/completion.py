"""``elfc completion SHELL``: a completion script generated from the parser itself."""

from __future__ import annotations

import argparse
import sys

from elfc.errors import ElfcError

EPILOG = """\
Needs shtab (`pip install 'elfc[completion]'`). The script is generated from elfc's own
argument parser, so it knows every command and option of this version.

examples:
  eval "$(elfc completion bash)"              in ~/.bashrc
  elfc completion zsh > ~/.zfunc/_elfc        with fpath+=~/.zfunc in ~/.zshrc
"""

SHELLS = ("bash", "zsh", "tcsh")


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def run(args: argparse.Namespace) -> int:
    try:
        import shtab
    except ModuleNotFoundError as exc:
        raise ElfcError(
            f"shell completion needs shtab ({exc}): pip install 'elfc[completion]'"
        ) from exc
    from elfc.cli.main import COMMANDS, build_parser

    # Every command's options: each command module configures its own subparser.
    parser = build_parser(set(COMMANDS))
    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    return 0

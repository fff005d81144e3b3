"""The ``edgeps`` command line: a thin dispatcher over ``edgeps.apps.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from edgeps import __version__
from edgeps.apps.commands import COMMANDS
from edgeps.errors import EdgepsError


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    parser = argparse.ArgumentParser(prog="edgeps", description="Real-time panoptic segmentation on edge devices.")
    parser.add_argument("--version", action="version", version=f"edgeps {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, module, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        modules[name] = module
        # Arguments are added lazily by the command module (see main) so --help stays light,
        # except when the user asks for this command's help.
        p.set_defaults(_module=module)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser()
    # Load only the chosen command's module, then parse again with its arguments.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    if chosen in modules:
        mod = importlib.import_module(f"edgeps.apps.commands.{modules[chosen]}")
        sub_action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        mod.add_arguments(sub_action.choices[chosen])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    mod = importlib.import_module(f"edgeps.apps.commands.{args._module}")
    try:
        return int(mod.run(args) or 0)
    except (EdgepsError, OSError) as exc:
        # edgeps errors, and the operating system's refusals (a file where a folder should be,
        # no permission, disk full: they name the path) are bad input or environment, not bugs.
        if args.debug:
            raise
        # One line, whatever the message holds (wrapped library messages can span lines).
        print(f"edgeps {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgeps {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

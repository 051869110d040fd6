"""One way to add a ``warnbot`` subcommand, shared by every module that adds some."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

Handler = Callable[[argparse.Namespace], int]


def command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    text: str,
    handler: Handler,
) -> argparse.ArgumentParser:
    """A subcommand whose help is ``text`` (Chinese, then English), run by ``handler``."""
    parser = sub.add_parser(name, help=text, description=text)
    # --config is accepted after the command too: `warnbot rules test --config F …`
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.set_defaults(handler=handler)
    return parser

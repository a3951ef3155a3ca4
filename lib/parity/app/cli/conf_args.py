"""The arguments every `parity` subcommand that reads the conf shares, as one parent parser
(`--conf-dir`, `--env`, `--set`), and the settings they load."""

from __future__ import annotations

import argparse

from parity.app.jobkit import OneLineParser
from parity.core.conf import Settings, load_settings


def conf_parent() -> OneLineParser:
    """The parent parser of the subcommands that read the conf: `--conf-dir DIR`, `--env NAME`
    and repeated `--set dotted.key=value`, as the jobs take them."""
    parent = OneLineParser(add_help=False)
    parent.add_argument("--conf-dir", default="conf", metavar="DIR", help="the conf folder (default: conf)")
    parent.add_argument("--env", default=None, help="conf overlay to apply (conf/<env>.yaml); default dev")
    parent.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parent


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings the parent parser's arguments name."""
    return load_settings(args.conf_dir, env=args.env, overrides=args.overrides)

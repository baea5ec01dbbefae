"""The `coopnode` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from coopnode.loadtest.command import add_loadtest_command
from coopnode.logs import configure_logging, get_logger
from coopnode.node.audit_cli import add_audit_commands
from coopnode.node.backup_cli import add_backup_commands
from coopnode.node.cluster_commands import add_cluster_commands
from coopnode.node.cluster_tls import set_ray_tls_environment
from coopnode.node.konbini_cli import add_konbini_admin_command, add_konbini_command
from coopnode.node.local_ray import keep_local_ray_on_loopback
from coopnode.node.member_cli import add_member_commands
from coopnode.node.shard_move import add_move_shard_command
from coopnode.reader.counter_reader import add_counter_reader_command
from coopnode.reader.till_cli import add_till_commands
from coopnode.settings import Settings, SettingsError, load_settings

log = get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coopnode", description=__doc__)
    parser.add_argument("--config", type=Path, help="a TOML file laid over config/node.toml")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the node")
    _add_node_flags(serve)
    serve.add_argument("--demo", action="store_true", help="open the demo co-op's members")
    # The same flags as `serve`, so that it prints what `serve` with them would run with.
    _add_node_flags(commands.add_parser("settings", help="print the effective settings as JSON"))
    admin = commands.add_parser("admin", help="staff tasks").add_subparsers(
        dest="admin_command", required=True
    )
    add_till_commands(commands, admin)
    add_counter_reader_command(commands)
    add_member_commands(admin)
    add_konbini_command(commands)
    add_konbini_admin_command(admin)
    add_move_shard_command(admin)
    add_backup_commands(admin)
    add_loadtest_command(commands)
    add_cluster_commands(commands)
    add_audit_commands(commands)
    return parser


def _add_node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray-address", help="join this Ray cluster instead of starting one")
    parser.add_argument("--host", help="listen on this address")
    parser.add_argument("--port", type=int, help="listen on this port (0: any free port)")
    parser.add_argument("--data-dir", help="LMDB files, Ray files and secrets go here")


def _apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    overrides = {
        "ray_address": getattr(args, "ray_address", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data_dir": getattr(args, "data_dir", None),
    }
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return settings
    node = msgspec.convert({**msgspec.to_builtins(settings.node), **given}, type(settings.node))
    return msgspec.structs.replace(settings, node=node)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _apply_flags(load_settings(args.config), args)
    except (SettingsError, msgspec.ValidationError) as error:
        print(f"coopnode: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log)
    if args.command == "settings":
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(settings).decode()) + "\n")
        return 0
    if hasattr(args, "run"):  # A subcommand that brought its own handler.
        code: int = args.run(args, settings)
        return code
    # Before Ray is imported, which happens only here, when it is needed.
    keep_local_ray_on_loopback(settings)
    try:
        set_ray_tls_environment(settings)
    except SettingsError as error:
        print(f"coopnode: {error}", file=sys.stderr)
        return 2
    from coopnode.node.service import serve

    try:
        serve(settings, demo=args.demo)
    except SettingsError as error:
        print(f"coopnode: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

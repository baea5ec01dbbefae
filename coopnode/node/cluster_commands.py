"""`coopnode cluster …`: what an operator runs to set up the hosts of a cluster.

coopnode cluster dev-ca DIR --hosts a,b=10.0.0.6,c [--days N]
    a development CA and one certificate per host (`dev_ca`), with the settings
    each host names them by
coopnode [--config FILE] cluster env
    this host's `ray start` environment from its `[cluster.tls]`, as `export` lines:
    `eval "$(coopnode cluster env)"` and then `ray start …` on the host
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from coopnode.node.cluster_tls import ray_start_environment_lines
from coopnode.node.dev_ca import DEV_CA_DAYS_DEFAULT, DevCaError, make_dev_ca, parse_hosts
from coopnode.settings import Settings, SettingsError


def add_cluster_commands(commands: Any) -> None:
    cluster = commands.add_parser("cluster", help="set up the hosts of a cluster").add_subparsers(
        dest="cluster_command", required=True
    )
    env = cluster.add_parser(
        "env", help="print this host's `ray start` environment (Ray's TLS) as export lines"
    )
    env.set_defaults(run=_env)
    dev_ca = cluster.add_parser(
        "dev-ca", help="write a development CA and a certificate and key for each host"
    )
    dev_ca.add_argument("directory", type=Path, help="where the CA and the hosts' folders go")
    dev_ca.add_argument(
        "--hosts", required=True, help="host names, comma-separated; NAME=ADDRESS adds an address"
    )
    dev_ca.add_argument(
        "--days", type=int, default=DEV_CA_DAYS_DEFAULT, help="how long the certificates last"
    )
    dev_ca.set_defaults(run=_dev_ca)


def _env(args: argparse.Namespace, settings: Settings) -> int:
    try:
        lines = ray_start_environment_lines(settings)
    except SettingsError as error:
        print(f"coopnode: {error}", file=sys.stderr)
        return 2
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _dev_ca(args: argparse.Namespace, settings: Settings) -> int:
    try:
        written = make_dev_ca(args.directory, parse_hosts(args.hosts), days=args.days)
    except (DevCaError, OSError) as error:
        print(f"coopnode: {error}", file=sys.stderr)
        return 2
    for files in written:
        print(f"# host {files.name}: copy {files.ca_file.parent} to the host, then name it")
        print("[cluster.tls]")
        print(f'ca_file = "{files.ca_file.resolve()}"')
        print(f'cert_file = "{files.cert_file.resolve()}"')
        print(f'key_file = "{files.key_file.resolve()}"')
        print()
    return 0

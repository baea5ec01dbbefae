"""The embedded local Ray stays on loopback; this module imports no Ray, on purpose.

On Linux Ray runs every local cluster as a cluster other hosts could join: it resolves
even `ray.init(_node_ip_address="127.0.0.1")` to the machine's network address, and its
GCS, raylet, workers and agents listen there (or on every address), so anyone on the
network could reach the node's actors. Ray's one-host mode, the one it runs on macOS and
Windows, binds all of them to 127.0.0.1; its switch is the environment variable
`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER` (Ray's documented opt-in to multi-host clusters
there), set to 0. Ray reads it once, when it is imported, so `keep_local_ray_on_loopback`
must run before anything imports Ray: the `coopnode serve` command calls it as soon as
it has its settings, before it imports the node. `start_ray` checks afterwards that the
local Ray took loopback, and refuses to go on if not.

A real cluster is joined with `--ray-address` (`node.ray_address`), and then nothing is
changed: the cluster's own hosts and their addresses are the operator's to choose. Ray's
TLS between those hosts is set the same way, before the import, from `[cluster.tls]`
(`coopnode.node.cluster_tls.set_ray_tls_environment`).
"""

from __future__ import annotations

import os

from coopnode.settings import Settings

LOCAL_RAY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"


def keep_local_ray_on_loopback(settings: Settings) -> None:
    """Before Ray is imported: a local Ray (no `node.ray_address`) binds loopback only."""
    if not settings.node.ray_address:
        os.environ[LOCAL_RAY_ENV] = "0"

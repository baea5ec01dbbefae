"""Named Ray actors: how the node creates them and how it calls them.

Every actor of the node (wallet shards, registry, identity, notifier, payments, readers)
is created the same way: named in the node's namespace, found rather than created twice
when a front joins a running cluster, restarted by Ray up to
`wallet.actor_max_restarts` times, never re-running a task on its own (the node's
callers retry under idempotency keys), and holding no CPU slot by default (they wait on
disks, SMTP and readers, and on a two-core machine must not starve one another of Ray's
slots), and, on a cluster, detached from the front that happened to create it. An
actor receives the settings as JSON with absolute paths, since it runs in
another working directory.

A call is awaited on the caller's event loop within a deadline; a deadline passed, an
actor that died or a task that raised all become `ActorCallFailed`, which each client
turns into its own answer (unavailable, try again).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import ray
from ray.exceptions import RayError

from coopnode.settings import Settings

RAY_NAMESPACE = "coopnode"


class ActorCallFailed(Exception):
    """An actor did not answer within the deadline, or could not answer at all.

    `cause` is what went wrong: the deadline, Ray's error, or, when the actor's method
    raised, the actor's own exception (which the message repeats).
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause


def with_absolute_paths(settings: Settings) -> Settings:
    """Actors run in other working directories: give them absolute paths."""
    node = msgspec.structs.replace(settings.node, data_dir=str(settings.data_path.resolve()))
    return msgspec.structs.replace(settings, node=node)


def settings_json(settings: Settings) -> bytes:
    """The settings as an actor receives them."""
    return msgspec.json.encode(with_absolute_paths(settings))


def named_actor(
    actor_class: type[Any],
    name: str,
    settings: Settings,
    *args: Any,
    num_cpus: float = 0,
    resources: dict[str, float] | None = None,
    scheduling_strategy: Any = None,
) -> Any:
    """Create the actor `name` of `actor_class` with `args`, or find it if it runs;
    `scheduling_strategy` places it in a placement group's bundle."""
    return (
        ray.remote(actor_class)
        .options(
            name=name,
            namespace=RAY_NAMESPACE,
            get_if_exists=True,
            max_restarts=settings.wallet.actor_max_restarts,
            max_task_retries=0,
            num_cpus=num_cpus,
            resources=resources or {},
            # On a cluster an actor outlives the driver that made it: a front (or an
            # admin command) that stops or loses its host takes no store with it. A
            # local Ray stops with its one front, and its actors with it.
            lifetime="detached" if settings.node.ray_address else None,
            scheduling_strategy=scheduling_strategy,
        )
        .remote(*args)
    )


async def answer_of(ref: Any, timeout_s: float | None) -> Any:
    """The result of the actor call `ref`, within `timeout_s` (None: no deadline)."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout_s)
    except (TimeoutError, RayError) as error:
        # Ray wraps what the actor raised (RayTaskError); its cause says what went wrong.
        raise ActorCallFailed(getattr(error, "cause", None) or error) from error

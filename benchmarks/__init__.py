"""`make bench`. The benchmarks that start Ray in their own process start a local one, so
it is kept on loopback here, before any of them imports Ray (`coopnode.node.local_ray`)."""

from coopnode.node.local_ray import keep_local_ray_on_loopback
from coopnode.settings import Settings

keep_local_ray_on_loopback(Settings())

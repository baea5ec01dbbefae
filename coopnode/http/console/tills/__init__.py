"""The console's tills part (issue 13 §3): the API routes, and the page once the
console's frame is there."""

from coopnode.http.console.tills.keys import PendingKeys
from coopnode.http.console.tills.routes import TILLS_CONSOLE_ROUTES, pending_keys_key

__all__ = ["TILLS_CONSOLE_ROUTES", "PendingKeys", "pending_keys_key"]

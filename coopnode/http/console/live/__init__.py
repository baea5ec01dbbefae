"""The live lunch view (issue 13 §7): taps per minute per store, declines by reason, the
tills connected and a queue-wait estimate, sampled at a fixed interval and sent to the
console's watchers as server-sent events."""

from coopnode.http.console.live.board import LiveBoard, live_board_key
from coopnode.http.console.live.routes import LIVE_ROUTES

__all__ = ["LIVE_ROUTES", "LiveBoard", "live_board_key"]

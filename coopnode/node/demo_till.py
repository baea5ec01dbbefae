"""The demo's till: `coopnode serve --demo` shows a tap going through end to end.

At start the demo members' cards are bound (once; a second start finds them bound), a
demo till is registered with a key kept in `<data_dir>/demo-till.key`, and two things
run beside the node:
  * the demo reader, a kiosk (`coopnode.node.kiosks`) named `demo`: a reader actor on the
    local Ray, placed by the `reader:demo` resource the local Ray is started with, the
    set-menu till agent reading cards over nfcpy's UDP transport, so every tap is a sale
    whose receipt line shows in the node's terminal (prefixed by Ray with the actor);
  * `python -m coopnode.reader.emulator` child processes, presenting each demo member's
    card in turn with a pause of `till.demo_tap_gap_s`.

Both are stopped with the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from pathlib import Path

from nacl.signing import SigningKey

from coopnode.actors.kernel.ray_calls import with_absolute_paths
from coopnode.actors.registry.messages import AddTill, BindCard
from coopnode.domain.money import TillKind
from coopnode.http.tills.hub import TillHub
from coopnode.logs import get_logger
from coopnode.node.demo import DemoCoop
from coopnode.reader.till_key import TillKeyFile, read_key_file, write_key_file
from coopnode.settings import KioskSettings, Settings

log = get_logger(__name__)

DEMO_STORE = "demo-cafeteria"
# A card stays on the emulated reader this long: over nfcpy's UDP transport a poll that
# finds no card waits 1 s, so a card must stay a little longer to be read for sure.
DEMO_PRESENT_S = 1.5
# How long a child gets to stop after SIGTERM before it is killed.
CHILD_STOP_S = 5.0
# The demo reader's kiosk name, and so its Ray resource (`reader:demo`).
DEMO_READER = "demo"


async def bind_demo_cards(hub: TillHub, demo: DemoCoop) -> None:
    for member in demo.members:
        if member.card_idm not in hub.cards:
            await hub.apply(BindCard(idm=member.card_idm, member_no=member.member_no))
    log.info("demo cards bound", cards=len(demo.members))


def _usable_key(hub: TillHub, path: Path) -> TillKeyFile | None:
    """The key file of a registered demo till; a key the registry does not know goes."""
    if not path.exists():
        return None
    key_file = read_key_file(path)
    till = hub.tills.get(key_file.till_id)
    if till is not None and not till.retired:
        return key_file
    path.unlink()
    return None


async def _demo_till_key(hub: TillHub, path: Path) -> TillKeyFile:
    """The demo till's key file, registering the till when it is not registered yet."""
    existing = _usable_key(hub, path)
    if existing is not None:
        return existing
    key = SigningKey.generate()
    change = await hub.apply(
        AddTill(store=DEMO_STORE, kind=TillKind.CAFETERIA, public_key=bytes(key.verify_key))
    )
    if not change.ok:
        raise RuntimeError(f"the demo till could not be added: {change.message}")
    key_file = TillKeyFile(
        till_id=change.tills[-1].till_id,
        store=DEMO_STORE,
        kind=TillKind.CAFETERIA,
        signing_key_hex=bytes(key).hex(),
    )
    write_key_file(path, key_file)
    return key_file


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DemoTill:
    """The demo till's registration and its emulated cards; its reader is a kiosk."""

    def __init__(self, settings: Settings, hub: TillHub, demo: DemoCoop) -> None:
        self._settings = with_absolute_paths(settings)
        self._hub = hub
        self._demo = demo
        self._port = _free_udp_port()
        self._cards: asyncio.Task[None] | None = None

    async def kiosk(self) -> KioskSettings:
        """The demo reader as a kiosk, its till registered at first start."""
        key_path = self._settings.data_path / "demo-till.key"
        await _demo_till_key(self._hub, key_path)
        return KioskSettings(
            name=DEMO_READER,
            device_path=f"udp:127.0.0.1:{self._port}",
            key_path=str(key_path),
            fixed_amount_yen=self._settings.till.demo_sale_yen,
        )

    def present_cards(self) -> None:
        self._cards = asyncio.get_running_loop().create_task(self._present_cards(self._port))
        log.info("demo cards presented", reader=f"udp:127.0.0.1:{self._port}")

    async def _present_cards(self, port: int) -> None:
        while True:
            for member in self._demo.members:
                await asyncio.sleep(self._settings.till.demo_tap_gap_s)
                card = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "coopnode.reader.emulator",
                    "--udp", f"127.0.0.1:{port}", "--idm", member.card_idm,
                    "--taps", "1", "--present-s", str(DEMO_PRESENT_S),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    await card.wait()
                finally:
                    await _stop_child(card)

    async def stop(self) -> None:
        if self._cards is not None:
            self._cards.cancel()
            await asyncio.gather(self._cards, return_exceptions=True)


async def _stop_child(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), CHILD_STOP_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()

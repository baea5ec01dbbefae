"""The demo co-op: members with deposits, opened once at first start (idempotently)."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

import msgspec

from coopnode.actors.wallet.client import WalletClient
from coopnode.domain.messages import Declined, MemberNo, OpenWallet
from coopnode.domain.money import Purse, Reason
from coopnode.logs import get_logger
from coopnode.settings import Settings

log = get_logger(__name__)

Idm = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$")]


class DemoMember(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    member_no: MemberNo
    name: str
    kana: str
    mail: str
    meal_plan: str
    card_idm: Idm
    deposits: dict[Purse, int]


class DemoCoop(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    coop: str
    members: list[DemoMember]


def load_demo() -> DemoCoop:
    raw = resources.files("coopnode.node").joinpath("demo.toml").read_bytes()
    return msgspec.toml.decode(raw, type=DemoCoop)


async def seed_demo(wallet: WalletClient, settings: Settings) -> DemoCoop:
    """Open the demo members' wallets; a second start finds them open and changes nothing."""
    demo = load_demo()
    if demo.coop not in settings.coops:
        raise ValueError(f"the demo co-op {demo.coop!r} is not in the settings' coops")
    for member in demo.members:
        op = OpenWallet(
            key="demo-enrolment",
            member_no=member.member_no,
            coop=demo.coop,
            meal_plan=member.meal_plan,
            deposits=member.deposits,
        )
        result = await wallet.submit(op)
        if isinstance(result, Declined) and result.reason is not Reason.DUPLICATE:
            raise RuntimeError(f"demo member {member.member_no}: {result.message}")
    log.info("demo co-op ready", coop=demo.coop, members=len(demo.members))
    return demo

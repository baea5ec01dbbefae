"""Identity in the node process: its secrets, its actor, the notifier and the dev outbox.

In development (and by default) the notifier actor runs an SMTP server on loopback and
points its mail sender at it, so every mail the node sends really crosses SMTP and lands
in the in-memory outbox that `/dev/outbox` shows. In production `notifier.smtp_embedded`
is off, mail goes to the co-op's relay and the outbox routes do not exist.

With `--demo`, the demo co-op's members are enrolled into identity as well. The demo file
gives no birth dates or phone numbers, so every demo member is born on `DEMO_BIRTH_DATE`
and has the mobile number +8190 followed by the last eight digits of the member number.
"""

from __future__ import annotations

from coopnode.actors.identity.actor import (
    IdentityClient,
    create_identity_actor,
    identity_key_path,
    passcode_key_path,
)
from coopnode.actors.identity.messages import (
    Enrol,
    Enrolment,
    InsuranceItem,
    Refused,
)
from coopnode.actors.notify.actor import NotifierClient, create_notifier_actor
from coopnode.domain.money import Purse
from coopnode.http.identity_front import IdentityFront
from coopnode.logs import get_logger
from coopnode.node.demo import DemoCoop
from coopnode.node.secrets_files import read_or_create_secret
from coopnode.settings import Settings

log = get_logger(__name__)

DEMO_BIRTH_DATE = "2007-04-01"
# The mutual aid every demo member took, as in the seed's enrolment mail (FLOWS §0).
DEMO_INSURANCE = (
    InsuranceItem(label="学生総合共済", amount_yen=14_400),
    InsuranceItem(label="学生賠償責任保険", amount_yen=8_500),
)


def prepare_identity_secrets(settings: Settings) -> None:
    """The passcode and identity keys exist before the actor reads them."""
    for path in (passcode_key_path(settings), identity_key_path(settings)):
        read_or_create_secret(path, settings)


def demo_phone(member_no: str) -> str:
    return f"+8190{member_no[-8:]}"


class IdentityNode:
    """What identity runs in the node process, started and stopped together."""

    def __init__(
        self,
        settings: Settings,
        front: IdentityFront,
        notifier: NotifierClient,
    ) -> None:
        self._settings = settings
        self.front = front
        self.notifier = notifier

    @classmethod
    async def start(cls, settings: Settings, ready_timeout_s: float) -> IdentityNode:
        client = IdentityClient(create_identity_actor(settings), settings.identity.call_timeout_s)
        await client.wait_ready(ready_timeout_s)
        notifier = NotifierClient(
            create_notifier_actor(settings), settings.notifier.queue_max_messages
        )
        embedded = await notifier.start()
        front = IdentityFront(
            client=client, notifier=notifier, outbox=notifier if embedded else None
        )
        return cls(settings, front, notifier)

    async def enrol_demo(self, demo: DemoCoop) -> None:
        """Enrol the demo members (once: a second start finds them and mails nobody)."""
        for member in demo.members:
            enrolment = Enrolment(
                member_no=member.member_no,
                name=member.name,
                kana=member.kana,
                birth_date=DEMO_BIRTH_DATE,
                mail=member.mail,
                phone=demo_phone(member.member_no),
                coop=demo.coop,
                share_units=10,
                insurance=list(DEMO_INSURANCE),
                emoney_yen=member.deposits.get(Purse.BASE, 0),
                meal_plan=member.meal_plan,
                meal_yen=member.deposits.get(Purse.MEAL, 0),
            )
            answer = await self.front.client.call(Enrol(actor="demo", enrolment=enrolment))
            if isinstance(answer.reply, Refused):
                raise RuntimeError(f"demo member {member.member_no}: {answer.reply.message}")
            for notification in answer.notifications:
                self.notifier.submit(notification)
        log.info("demo members enrolled", members=len(demo.members))

    async def stop(self, grace_s: float) -> None:
        await self.notifier.stop(grace_s)

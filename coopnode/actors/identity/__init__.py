"""The identity room: members', guardians' and staff's accounts, how they sign in, their
sessions, and what members do with their accounts, owned by one Ray actor.

The front sends a request (`messages.IdentityRequest`, a tagged union); the actor hands it
to `service.IdentityService.handle`, which finds the one part that answers its type in one
`{request type: handler}` table and returns an `Answer`: the reply, and the mails, SMS and
calls the front must send. The parts share the store, the clock, the settings, the keys,
the password hasher and the wallet through one `context.IdentityContext` each of them
holds; no part inherits from another.

The shell and what the parts share
    actor           the Ray actor, the front's client to it, and `build_service`
    service         `IdentityService`: the one face, and the table of handlers
    messages/       the requests and replies that cross to the front, a module per part
                    behind one face; `Refused` carries an `IdentityReason`, never an
                    HTTP status (the edge's one table gives it)
    store           the LMDB environment every part reads and writes
    context         `IdentityContext`, what every part holds
    keys            sealing and keyed digests with the node's identity key
    answers         `answer`, `refused` (the one way a part says no) and the refusals
                    the parts share
    flows           flow records and their one-time codes, for the parts that run flows
    passwords       argon2id hashing in a bounded pool of threads

The parts, and the requests each answers
    enrolment       Enrol (FLOWS §0)
    mail_change     MailChangeStart and its flow's steps (FLOWS §1)
    password        PasswordStart and its steps, and a guardian's setup steps (FLOWS §2)
    signin          SignIn and the second factor's steps: portal (§3), my-page (§4),
                    staff and guardians
    sessions        CheckSession, SignOut; opens the session every sign-in ends with
    wallet_signin   WalletLoginStart and its steps (FLOWS §5)
    account         GetProfile, TotpBegin, TotpConfirm
    family          FamilyGrant, FamilyRevoke, FamilyList (FLOWS §3 step 5)
    guardian        GuardianStart, GuardianWards
    staff           CreateStaff, StaffResume, StaffChangeMail, AuditList, AuditRecord
    staff_access    AuthorizeStaff (a role's or an API token's permission), the bootstrap
                    of the first administrator, StaffList, StaffSetRole, StaffDisable,
                    TokenCreate, TokenList, TokenRevoke (issue 13 §1)
    grants          OAuthConsent, OAuthDecide, OAuthToken, OAuthRevoke, OAuthIntrospect,
                    ListGrants, RevokeGrant; the protocol itself is `oauth` (authlib)
    desk            the member desk: inquiries, document requests, events, card tries

What the room may import
    `coopnode.domain` (the rules), its own modules, the notify room's mail texts and
    notification shapes (`coopnode.actors.notify.mails` and `.mailer`), the message
    catalogues (`coopnode.catalogues`: the OAuth scope texts) and
    `coopnode.settings`; never `coopnode.http` or `coopnode.node`: the front calls in, and
    nothing here calls out to it. Two shells reach further, for their own jobs only:
    `actor` uses Ray, the wallet's client, logging and metrics (and, lazily, the node's
    `with_absolute_paths` when it spawns the actor), and `store` shares the wallet store's
    file lock. `tests/identity/test_room.py` holds every module to this.
"""

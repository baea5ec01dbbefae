"""The API room: the JSON routes, each declared once with its types for the OpenAPI
document.

    wallet      members' wallets for POS systems and staff: payments, voids, refunds,
                charges, moves, suspension, history, the audit
    identity    enrolment, sign-in, flows and staff accounts as JSON
    desk        staff's side of the member desk
    konbini     the store network's webhook, the expiry sweep, staff refunds
    oauth       OAuth 2.0 (code with PKCE, revocation) and the member's bearer wallet
    dev_outbox  the development outbox (development only)
    backups     staff backups of every store: begin one, ask after it

It imports the domain, the actors' messages and clients, and the edge; never a store or
node.
"""

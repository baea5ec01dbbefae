"""The notify room: what the node sends to people, and how.

    actor       the notifier's Ray actor, and the front's client of it
    notifier    the bounded queue and its workers: a request never waits for a relay
    messages    the notifications (mail, SMS, voice) and their delivery outcomes
    delivery    one delivery with its retries and backoff, the rule every channel follows
    smtp        mail over SMTP to the co-op's relay
    sms         SMS and voice calls: the outbox adapter and Twilio's REST API
    outbox      the development outbox, in memory only
    dev_smtp    the development mail server on loopback that fills the outbox
    mails       the texts of the mails, in the co-op's Japanese

It imports the domain, the settings and the kernel; never http, node or another room's
store.
"""

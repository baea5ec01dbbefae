"""The portal room: the pages members (and guardians) see, in Japanese and English.

    routes      the page routes and the static files, in one table
    core        rendering, the member's language, the page error, forms and CSRF
    labels      the maps from a status, a kind or a reason to its message id
    signin      sign-in to the portal and to the my-page, with the second factor
    flows       password setting and mail change (FLOWS §1–§2)
    home        the portal home (FLOWS §3)
    desk        the home's desk: inquiries, documents, events, the IC card
    family      family access: the grant, and the guardian's view
    guardian    a guardian's own sign-in and pages
    wallet      the e-money pages (FLOWS §5), through the member's OAuth token
    charge      charging by card and at a convenience store

It imports the domain, the actors' messages and clients, and the edge (`http`); never a
store or node.
"""

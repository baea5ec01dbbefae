"""The portal room: the pages members (and guardians) see, in every language with a
catalogue (`coopnode.catalogues`: Japanese first, English second).

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
    templates/  the pages, by what they hold: frame/ (the frame, macros, the error page,
                the history block), member/ (guide, password, mail change, portal
                sign-in and home), emoney/ (my-page, wallet sign-in and consent, e-money
                and charging pages), guardian/ (family access and a guardian's pages),
                desk/ (inquiries, documents, events, the IC card)
    static/     the style sheet, the one small script and the icon

It imports the domain, the catalogues, the actors' messages and clients, and the edge
(`http`); never a store or node.
"""

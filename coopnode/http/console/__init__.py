"""The console room: the staff console's pages (issue 13), for the counter (窓口), the
stores and the accounts office, on a counter PC or a tablet, in every language with a
catalogue (Japanese first, English second).

    room        `ConsolePart` and `MenuEntry`: what a part brings
    parts       the registered parts, one line each, and `setup_console` (the frame's
                templates, the static files, every part's pages and menu)
    pages       rendering in the frame, the staff member's language, the error page,
                forms and CSRF, and `serve`: a page's access checked before it runs
    labels      the maps from a role or a permission to its message id
    signin      the home, sign-in (staff id and password, then the authenticator's code),
                sign-out and the language switch
    staff       staff accounts (create, role, disable) and machines' API tokens
    audit       the audit log, newest first, paged
    books       the accounts office: daily settlement (日計) and its closing, the CSV and
                charts, reconciliation, the unused-balance report (未使用残高)
    templates/  frame/ (the frame, its macros, the home and the error page), and one
                directory per part, named for it (signin/, staff/, audit/, …)
    static/     the console's style sheet and its one small script

Adding a part. A part is a module or sub-package of this room exposing a `ConsolePart`:
a name, a tuple of `edge.Route`s whose handlers render with `pages.render`, and the menu
entries it shows. Each route declares its access as the API's do: `staff_may(Permission.X)`
for an action, `STAFF_SIGNED_IN` for a page any staff member may see, `PUBLIC` for the
sign-in steps. Its templates live under `templates/<part>/` and extend
`frame/base.html`. Then add one line to `parts.PARTS`. The menu shows an entry only to a
staff member whose role grants its permission (`domain.staff.ROLE_PERMISSIONS`), and
`tests/console/test_permissions.py` checks every route of every part for every role.

A page's handler finds who calls in `request[edge.CALLER]` (a `StaffMember`; its
`staff_actor` names it in the audit log) and the posted form in `request[pages.FORM]`;
the session's CSRF token was checked against the form's `csrf` field before it ran.

It imports the domain, the catalogues, the identity actor's messages, the edge and the
portal's form and cookie helpers (`http.portal.core`); never a store or node.
"""

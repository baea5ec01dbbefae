"""The staff console's room (issue 13): a sub-package per part of the co-op's work.

    books   the accounts office: daily settlement (日計) and its closing, reconciliation,
            the unused-balance report (未使用残高)

It imports the domain, the actors' messages and clients, the catalogues and the edge.
"""

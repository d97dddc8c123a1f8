"""Which model answers: the catalog, request features, strategies and the router.

Nothing here knows about gRPC or the ledger; the server wires routing to both.
"""

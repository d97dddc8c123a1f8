"""Per-tenant cost caps: prices, windows, limits and the ledgers that hold spend.

Usable on its own: nothing here knows about gRPC, routing or providers.
"""

"""The gRPC service: wires routing, providers and budgets behind the fareway.v1 API."""

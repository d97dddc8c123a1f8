"""Python client for fareway over the generated fareway.v1 stubs."""

from fareway.client.client import DEFAULT_TARGET, Client, build_request

__all__ = ["DEFAULT_TARGET", "Client", "build_request"]

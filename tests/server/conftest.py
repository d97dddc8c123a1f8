from tests.server.harness import harness, serve

__all__ = ["harness", "serve"]

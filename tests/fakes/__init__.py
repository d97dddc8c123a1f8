"""Loopback fakes of upstream APIs, shared by the provider and server tests."""

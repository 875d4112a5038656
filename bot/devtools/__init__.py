"""Loopback emulators and the dev identity provider, for tests and `accessbot demo` only."""

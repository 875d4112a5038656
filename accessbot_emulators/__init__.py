"""Loopback emulators of Slack, Rancher and an OpenID provider for tests and the demo; nothing here imports `bot`."""

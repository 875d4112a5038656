"""Driven edges: Rancher, the IdP, SQLite, sealing and the Slack Web API."""

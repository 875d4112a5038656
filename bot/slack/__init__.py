"""Driving edge: the Bolt app, its listeners and every sentence a Slack user reads."""

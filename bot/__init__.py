"""rancher-access-bot: identity-based, time-boxed access to Rancher clusters from Slack."""

__version__ = "0.1.0"

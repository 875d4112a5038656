"""Directory APIs that say which groups a user is in: Microsoft Graph (Entra) and the Google Admin SDK Directory."""

from bot.adapters.group_sources.google_directory import GoogleDirectory
from bot.adapters.group_sources.graph import GraphGroups

__all__ = ["GoogleDirectory", "GraphGroups"]

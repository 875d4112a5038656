"""Rancher's v3 API behind the RancherApi port."""

from __future__ import annotations

from bot.adapters.rancher.check import RancherCheck
from bot.adapters.rancher.client import RancherClient

__all__ = ["RancherCheck", "RancherClient"]

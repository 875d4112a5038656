"""The `finish_activations` job: retry the grants a transient Rancher failure (or a crash) left in `activating`.

A grant is retried when its backoff has passed (`next_attempt_at`), or, with no retry scheduled, once it has been
`activating` untouched for `stuck_after` (a crash between recording the intent and creating the binding). Each try
goes through Lifecycle.finish_activation, which fails the grant (with one security alert) once
`activation_timeout` has passed since the activation began.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core.errors import BotError
from bot.core.model import GrantState
from bot.core.storage import GrantStore
from bot.services.grants import Lifecycle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActivationResult:
    """What one run did: grants tried, now active, now failed, still waiting."""

    tried: int = 0
    activated: int = 0
    failed: int = 0
    waiting: int = 0


class ActivationRetries:
    """Finishes interrupted activations; safe to run at any time and from any process holding the lease."""

    def __init__(self, *, grants: GrantStore, lifecycle: Lifecycle, stuck_after: int = 120) -> None:
        self._grants = grants
        self._lifecycle = lifecycle
        self._stuck_after = stuck_after
        self.busy: set[str] = set()
        """Grants being tried right now by this process."""

    def due(self, now: int) -> list[str]:
        """Ids of the `activating` grants whose retry is due (or which a crash left untouched)."""
        out = []
        for grant in self._grants.find(states=(GrantState.ACTIVATING,), limit=10000):
            if grant.id in self.busy:
                continue
            if grant.next_attempt_at:
                if grant.next_attempt_at <= now:
                    out.append(grant.id)
            elif (grant.updated_at or grant.requested_at) <= now - self._stuck_after:
                out.append(grant.id)
        return out

    async def run(self, now: int) -> ActivationResult:
        """Try every due activation once, one after the other (they are few: Rancher was failing)."""
        tried = activated = failed = 0
        for grant_id in self.due(now):
            grant = self._grants.get(grant_id)
            if grant is None:  # pragma: no cover - grants are never deleted
                continue
            self.busy.add(grant_id)
            try:
                done = await self._lifecycle.finish_activation(grant)
            except BotError as err:  # e.g. the holder unlinked between the read and the try
                log.warning("finishing the activation of %s failed: %s", grant_id, err)
                continue
            finally:
                self.busy.discard(grant_id)
            tried += 1
            activated += done.state is GrantState.ACTIVE
            failed += done.state is GrantState.FAILED
        waiting = len(self._grants.find(states=(GrantState.ACTIVATING,), limit=10000))
        result = ActivationResult(tried, activated, failed, waiting)
        if tried:
            log.info("activation retries: %s", result)
        return result

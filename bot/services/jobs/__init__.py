"""Scheduled job bodies as small modules: the revocation sweep, reconciliation, the weekly digest, the lease.

The scheduler only decides *when* they run; each body takes `now` (epoch seconds), is idempotent, and is safe to
interrupt (a cancelled run leaves rows in states the next run picks up).
"""

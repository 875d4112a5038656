"""Rancher's answers to a binding create, classified: refusals (plain words) versus transient failures."""

from __future__ import annotations

import time

import pytest

from bot.core.errors import ConflictError, PermanentUpstreamError, TransientUpstreamError, UpstreamError
from bot.core.rancher_answers import classify


def permanent(status: int, code: str, message: str) -> PermanentUpstreamError:
    """A non-retryable Rancher error as the client raises it."""
    return PermanentUpstreamError("Rancher", message, status=status, code=code)


@pytest.mark.parametrize(
    ("error", "refused", "words"),
    [
        # validator.go: unknown role template is a 500 "Error getting role template"
        (
            permanent(500, "ServerError", 'Error getting role template: roletemplates… "x" not found'),
            True,
            "does not exist",
        ),
        # scoped/store.go@v2.12.0: unknown project 500; @v2.11.0 the namespace is missing: 404
        (permanent(500, "ServerError", 'projects.management.cattle.io "p-1" not found'), True, "no longer exists"),
        (permanent(404, "NotFound", 'namespaces "p-1" not found'), True, "no longer exists"),
        # local_auth_provider.go: a principal the key's provider cannot resolve
        (permanent(500, "ServerError", 'user.management.cattle.io "3f2a" not found'), True, "never logged in"),
        # webhook pkg/auth/escalation.go: 422 Invalid
        (permanent(422, "Invalid", "admission webhook … not currently held"), True, "escalation"),
        (permanent(422, "InvalidState", "Role X is locked"), True, "locked"),
        (permanent(422, "InvalidBodyContent", "Cannot reference context [project] from [cluster]"), True, "context"),
        (permanent(400, "BadRequest", "cluster not found"), True, "refused the binding"),
        (permanent(401, "Unauthorized", "must authenticate"), True, "API key"),
        (permanent(403, "Forbidden", "forbidden"), True, "not allowed"),
        (ConflictError("Rancher", "not made by the bot", status=409, code="Conflict"), True, "did not make"),
        # an unrecognised 500, 503, a timeout: try again later
        (permanent(500, "ServerError", "etcdserver: request timed out"), False, "Rancher failed"),
        (TransientUpstreamError("Rancher", "HTTP 503", status=503, code="ServiceUnavailable"), False, "did not answer"),
        (TransientUpstreamError("Rancher", "no answer within 10s"), False, "did not answer"),
    ],
)
def test_every_answer_is_classified(error: UpstreamError, refused: bool, words: str) -> None:
    """Each Rancher answer is a refusal (with the reason in plain words) or transient."""
    verdict = classify(error, role="project-member", where="dev-eu/payments")
    assert verdict.refused is refused
    assert words in verdict.why


def test_classifying_a_huge_message_is_fast() -> None:
    """Hostile input: a 1 MB message full of quotes is classified in linear time (budget 0.5 s, best of 3)."""
    message = 'user.management.cattle.io "' + '"x' * 500_000
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        classify(permanent(500, "ServerError", message), role="r", where="w")
        best = min(best, time.perf_counter() - started)
    assert best < 0.5

"""What `accessbot oidc check` learns from the provider's discovery document before anyone signs in.

Discovery and its issuer, the signing algorithms, the scopes the bot will ask for (and the ones it leaves out),
the authorization parameters, how the bot authenticates at the token endpoint, and whether a refresh token will
come (without one the bot cannot notice offboarding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.adapters.oidc.client import OidcClient
from bot.core.errors import TokenRejected, UpstreamError


@dataclass
class ProviderReport:
    """Facts (label, value) in order, and what is wrong or worth knowing."""

    facts: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


async def check_provider(client: OidcClient, *, require_refresh_token: bool = True) -> ProviderReport:
    """Read discovery and judge the configuration against it (no sign-in happens)."""
    report = ProviderReport()
    try:
        meta = await client.metadata()
    except TokenRejected as err:
        report.problems.append(f"discovery: {err.reason} (oidc.issuer must equal the document's issuer exactly)")
        return report
    except UpstreamError as err:
        report.problems.append(f"discovery: {err.message}")
        return report
    report.facts.append(("discovery", f"ok, issuer {meta.issuer}"))
    allowed = [a for a in client.allowed_algorithms if meta.signing_algs is None or a in meta.signing_algs]
    offered = ", ".join(meta.signing_algs or ("not listed",))
    report.facts.append(("algorithms", f"provider signs with {offered}; accepted: {', '.join(allowed) or 'none'}"))
    if not allowed:
        report.problems.append(
            f"algorithms: the provider signs ID tokens with {offered}, none of oidc.allowed_algorithms "
            "(select an RSA or EC signing key at the provider; HS256 is never accepted)"
        )
    requested, dropped = await client.scopes()
    report.facts.append(("scopes", " ".join(requested)))
    if dropped:
        report.facts.append(("left out", f"{' '.join(dropped)} (not in the provider's scopes_supported)"))
    listed = set(meta.scopes_supported or ())
    unknown = [s for s in requested if meta.scopes_supported is not None and s not in listed]
    if unknown:
        report.warnings.append(
            f"scopes: {' '.join(unknown)} are not in the provider's scopes_supported; many providers refuse the whole "
            "sign-in for one unknown scope (remove oidc.scopes to let the bot choose)"
        )
    params = client.extra_auth_params
    report.facts.append(("authorize", " ".join(f"{k}={v}" for k, v in params.items()) or "no extra parameters"))
    report.facts.append(("token auth", "client_secret_post" if meta.post_auth else "client_secret_basic"))
    refresh, why = _refresh_expected(requested, params, meta.grant_types)
    report.facts.append(("refresh token", f"{refresh}: {why}"))
    if refresh == "no":
        target = report.problems if require_refresh_token else report.warnings
        target.append(f"refresh token: {why}; links would be {'refused' if require_refresh_token else 'unmonitored'}")
    if "S256" not in (meta.code_challenge_methods or ("S256",)):
        report.warnings.append("the provider does not list PKCE S256 (code_challenge_methods_supported)")
    return report


def _refresh_expected(
    requested: tuple[str, ...], params: dict[str, str], grants: tuple[str, ...] | None
) -> tuple[str, str]:
    """("yes" | "likely" | "no", why) for whether the provider will issue a refresh token to this request."""
    if grants is not None and "refresh_token" not in grants:
        return "no", "the provider lists no refresh_token grant"
    if params.get("access_type") == "offline":
        return "yes", "access_type=offline is sent (Google)"
    if "offline_access" in requested:
        return "likely", "offline_access is requested (confirm with --login)"
    return "no", "neither offline_access nor access_type=offline is requested"

"""In-process counters (requests, command latency, job runs) exported at /metrics in Prometheus text format."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Requests, command latency and job runs; grants by state are read from the store at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.command_count: dict[str, int] = defaultdict(int)
        self.command_sum: dict[str, float] = defaultdict(float)
        self.command_buckets: dict[tuple[str, float], int] = defaultdict(int)
        self.job_runs: dict[str, int] = defaultdict(int)
        self.job_failures: dict[str, int] = defaultdict(int)
        self.refusals: dict[tuple[str, str], int] = defaultdict(int)
        self.outbox: dict[str, int] = defaultdict(int)

    def count_request(self, route: str, status: int) -> None:
        """Count one HTTP request by route and status."""
        with self._lock:
            self.requests[(route, status)] += 1

    def observe_command(self, name: str, seconds: float) -> None:
        """Record how long one slash command took end to end."""
        with self._lock:
            self.command_count[name] += 1
            self.command_sum[name] += seconds
            for bound in _BUCKETS:
                if seconds <= bound:
                    self.command_buckets[(name, bound)] += 1

    def job_ran(self, job: str, ok: bool) -> None:
        """Count one job run and whether it failed."""
        with self._lock:
            self.job_runs[job] += 1
            if not ok:
                self.job_failures[job] += 1

    def count_refusal(self, kind: str, reason: str) -> None:
        """Count one refused outside request (`kind`: slack, oauth) by its reason."""
        with self._lock:
            self.refusals[(kind, reason)] += 1

    def count_outbox(self, outcome: str) -> None:
        """Count one outbox delivery outcome: `sent`, `failed` (will retry), `parked`, `retry` or `drop`."""
        with self._lock:
            self.outbox[outcome] += 1

    def render(self, grants_by_state: Mapping[str, int], extra: Mapping[str, float] | None = None) -> str:
        """The Prometheus text exposition."""
        out: list[str] = []
        with self._lock:
            out += ["# HELP accessbot_http_requests_total HTTP requests by route and status.",
                    "# TYPE accessbot_http_requests_total counter"]  # fmt: skip
            for (route, status), n in sorted(self.requests.items()):
                out.append(f'accessbot_http_requests_total{{route="{route}",status="{status}"}} {n}')
            out += ["# HELP accessbot_command_seconds Slash command handling time.",
                    "# TYPE accessbot_command_seconds histogram"]  # fmt: skip
            for name in sorted(self.command_count):
                for bound in _BUCKETS:
                    out.append(
                        f'accessbot_command_seconds_bucket{{command="{name}",le="{bound}"}} '
                        f"{self.command_buckets[(name, bound)]}"
                    )
                out.append(f'accessbot_command_seconds_bucket{{command="{name}",le="+Inf"}} {self.command_count[name]}')
                out.append(f'accessbot_command_seconds_sum{{command="{name}"}} {self.command_sum[name]:.6f}')
                out.append(f'accessbot_command_seconds_count{{command="{name}"}} {self.command_count[name]}')
            out += ["# HELP accessbot_job_runs_total Scheduled job runs.", "# TYPE accessbot_job_runs_total counter"]
            for job, n in sorted(self.job_runs.items()):
                out.append(f'accessbot_job_runs_total{{job="{job}"}} {n}')
            out += ["# HELP accessbot_job_failures_total Scheduled job failures.",
                    "# TYPE accessbot_job_failures_total counter"]  # fmt: skip
            for job, n in sorted(self.job_failures.items()):
                out.append(f'accessbot_job_failures_total{{job="{job}"}} {n}')
            out += ["# HELP accessbot_refusals_total Refused outside requests by kind and reason.",
                    "# TYPE accessbot_refusals_total counter"]  # fmt: skip
            for (kind, reason), n in sorted(self.refusals.items()):
                out.append(f'accessbot_refusals_total{{kind="{kind}",reason="{_label(reason)}"}} {n}')
            out += ["# HELP accessbot_outbox_deliveries_total Outbox outcomes: sent, failed, parked, retry, drop.",
                    "# TYPE accessbot_outbox_deliveries_total counter"]  # fmt: skip
            for outcome, n in sorted(self.outbox.items()):
                out.append(f'accessbot_outbox_deliveries_total{{outcome="{outcome}"}} {n}')
        out += ["# HELP accessbot_grants Grants by state.", "# TYPE accessbot_grants gauge"]
        for state, n in sorted(grants_by_state.items()):
            out.append(f'accessbot_grants{{state="{state}"}} {n}')
        for name, value in sorted((extra or {}).items()):
            out += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(out) + "\n"


def _label(value: str) -> str:
    """A Prometheus label value: backslashes, quotes and newlines escaped (reasons are ours, but stay safe)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


METRICS = Metrics()

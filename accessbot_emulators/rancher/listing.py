"""Collections: filters (unknown keys silently ignored), sorting, marker pagination and the collection envelope.

norman parse/collection.go (filters, limit) and api/handler/query.go (sort, marker pagination), byte-identical in
the norman versions Rancher 2.7-2.15 pin; tokens have their own list handler (no filters, no pages).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from accessbot_emulators.rancher.auth import Caller
from accessbot_emulators.rancher.principals import caller_principals
from accessbot_emulators.rancher.profiles import absent_fields
from accessbot_emulators.rancher.rendering import caller_view, render_bytes, visible
from accessbot_emulators.rancher.schema import Obj, ResourceType, filter_text
from accessbot_emulators.rancher.store import Store

MAX_LIMIT = 10000

_MODIFIERS = ("eq", "ne", "in", "notin")


def parse_filters(
    store: Store, type_spec: ResourceType, items: Sequence[tuple[str, str]]
) -> dict[str, list[tuple[str, list[str]]]]:
    """The query's filters by field: `field`, `field_ne|in|notin`; unknown or ignored fields are dropped."""
    grouped: dict[tuple[str, str], list[str]] = {}
    absent = absent_fields(store.settings.profile, type_spec.name)
    for key, value in items:
        if key in ("limit", "marker", "sort", "order", "action", "reverse"):
            continue
        fname, modifier = key, "eq"
        if fname not in type_spec.filters and "_" in key:
            fname, modifier = key.rsplit("_", 1)
        if fname in absent or fname in store.settings.ignored_filters:
            continue  # a field this version does not have is an unknown filter: silently ignored
        if f"{type_spec.name}.{fname}" in store.settings.ignored_filters:
            continue
        if fname not in type_spec.filters or modifier not in _MODIFIERS:
            continue  # unknown keys are silently ignored, as Rancher does
        if fname in type_spec.bools and modifier not in ("eq", "ne"):
            continue
        grouped.setdefault((fname, modifier), []).append(value)
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for (fname, modifier), values in grouped.items():
        chosen = values if modifier in ("in", "notin") else values[:1]
        out.setdefault(fname, []).append((modifier, chosen))
    return out


def list_collection(
    store: Store, type_spec: ResourceType, query: Sequence[tuple[str, str]], caller: Caller | None, base: str
) -> bytes:
    """`GET /v3/<type>`: the visible objects matching the filters, sorted, one page of them, as JSON bytes."""
    if type_spec.name == "principal":
        return collection(store, type_spec, caller_principals(store, caller), base, conditions={}, paging=None)
    if type_spec.name == "token":
        # rancher pkg/auth/tokens/api.go: `schema.ListHandler = api.tokenListHandler` lists the caller's tokens
        # (manager.go listTokens) without norman's filters or pages
        mine = [
            caller_view(type_spec, o, caller)
            for o in store.db["token"].values()
            if visible(store, type_spec, o, caller)
        ]
        mine.sort(key=lambda o: str(o["id"]))
        return collection(store, type_spec, mine, base, conditions={}, paging=None, caller=caller)
    conditions = parse_filters(store, type_spec, query)
    objects = store.db[type_spec.name]
    candidates: set[str] | None = None
    for fname, conds in conditions.items():
        if fname not in store.idx[type_spec.name]:
            continue
        for modifier, values in conds:
            if modifier in ("eq", "in"):
                found: set[str] = set()
                for value in values:
                    found |= store.idx[type_spec.name][fname].get(value, set())
                candidates = found if candidates is None else candidates & found
    pool = objects.values() if candidates is None else [objects[i] for i in candidates if i in objects]
    matched: list[Obj] = []
    for obj in pool:
        if not visible(store, type_spec, obj, caller):
            continue
        view = caller_view(type_spec, obj, caller)
        if all(matches(view.get(f), m, vals) for f, conds in conditions.items() for m, vals in conds):
            matched.append(view)
    qmap: dict[str, str] = {}
    for key, value in query:
        qmap.setdefault(key, value)
    sort_field = qmap.get("sort", "")
    reverse = qmap.get("order", "asc") == "desc"
    if sort_field in type_spec.filters:
        matched.sort(key=lambda o: (filter_text(o.get(sort_field)), o["id"]), reverse=reverse)
    else:
        matched.sort(key=lambda o: str(o["id"]), reverse=reverse)
    return collection(store, type_spec, matched, base, conditions=conditions, paging=(query, qmap), caller=caller)


def collection(
    store: Store,
    type_spec: ResourceType,
    matched: list[Obj],
    base: str,
    *,
    conditions: Mapping[str, list[tuple[str, list[str]]]],
    paging: tuple[Sequence[tuple[str, str]], dict[str, str]] | None,
    caller: Caller | None = None,
) -> bytes:
    """A collection envelope around `matched` (paged, with sort and filter links when `paging` is given)."""
    coll_url = f"{base}/v3/{type_spec.plural.lower()}"
    out: Obj = {"type": "collection", "resourceType": type_spec.name, "links": {"self": coll_url}}
    if type_spec.writable:
        out["createTypes"] = {type_spec.name: coll_url}
    out["actions"] = {"search": f"{coll_url}?action=search"} if type_spec.name == "principal" else {}
    page = matched
    if paging is not None:
        query, qmap = paging
        limit = page_limit(qmap.get("limit"), store.settings.page_size)
        total = len(matched)
        start = 0
        marker = qmap.get("marker")
        if marker:
            start = next((i for i, o in enumerate(matched) if o["id"] == marker), 0)
        end = min(start + limit, total)
        page = matched[start:end]
        pagination: Obj = {"limit": limit, "total": total}
        kept = [(k, v) for k, v in query if k not in ("marker", "limit")]
        if "limit" in qmap:
            kept.append(("limit", str(limit)))

        def link(index: int) -> str:
            return f"{coll_url}?{urlencode([*kept, ('marker', str(matched[index]['id']))])}"

        # norman api/handler/query.go: previous/next/partial/first/last exactly as it computes them
        if total and max(0, start - limit) < start:
            pagination["previous"] = link(max(0, start - limit))
        if start < end < total:
            pagination["next"] = link(end)
        if total and (start > 0 or end < total):
            pagination["partial"] = True
            pagination["first"] = link(0)
            if 0 < total - limit < total:
                pagination["last"] = link(total - limit)
        out["pagination"] = pagination
        rest = urlencode([(k, v) for k, v in query if k not in ("order",)])  # encoded once, not once per link
        joined = f"{coll_url}?{rest}&" if rest else f"{coll_url}?"
        sort_links = {f: f"{joined}{urlencode([('sort', f)])}" for f in type_spec.filters}
        flipped = "asc" if qmap.get("order") == "desc" else "desc"
        out["sort"] = {
            "order": "desc" if qmap.get("order") == "desc" else "asc",
            "reverse": f"{joined}{urlencode([('order', flipped)])}",
            "links": sort_links,
        }
        out["filters"] = {
            f: (
                [{"modifier": m, "value": v if m in ("in", "notin") else v[0]} for m, v in conditions[f]]
                if f in conditions
                else None
            )
            for f in type_spec.filters
        }
    envelope = json.dumps(out, separators=(",", ":")).encode()
    data = b",".join(render_bytes(store, type_spec, o, caller, base) for o in page)
    return envelope[:-1] + b',"data":[' + data + b"]}"


def page_limit(raw: str | None, default: int) -> int:
    """The page size asked for (norman parse/collection.go parsePagination): absent or unparsable → the default;
    -1 or over MAX_LIMIT → MAX_LIMIT; 0 → an empty page; other negatives → the default."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    if value > MAX_LIMIT or value == -1:
        return MAX_LIMIT
    return value if value >= 0 else default


def matches(value: Any, modifier: str, values: list[str]) -> bool:
    """Whether a field value passes one filter condition."""
    text = filter_text(value)
    if modifier == "eq":
        return text == values[0]
    if modifier == "ne":
        return text != values[0]
    if modifier == "in":
        return text in values
    return text not in values

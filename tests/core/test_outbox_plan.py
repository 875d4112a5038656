"""The delivery planner: priority then queue order, order kept per message, pacing per lane, a budget per plan."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.core.model import OutboxMessage, Priority
from bot.core.outbox_plan import lane, plan


def _m(
    mid: int, kind: str = "post", channel: str = "C1", priority: Priority = Priority.NORMAL, order_key: str = ""
) -> OutboxMessage:
    return OutboxMessage(mid, f"k{mid}", kind, channel, {}, priority=priority, order_key=order_key)


def test_urgent_messages_are_planned_before_older_ones() -> None:
    """An approval post queued after 10,000 edits is the first message planned."""
    edits = [_m(i, "update", "CGRANTS", Priority.BULK, f"grant:{i}") for i in range(1, 10_001)]
    ask = _m(10_001, "post", "CAPPROVE", Priority.URGENT, "approval:g-9")
    heads = {m.order_key: m.id for m in [*edits, ask]}
    result = plan([*edits, ask], heads, {}, 0.0, capacity=1)
    assert result.send == (ask,)


def test_one_message_per_lane_per_plan_and_other_lanes_go_too() -> None:
    """Two posts in one channel: only the first now; a post in another channel and a DM go in the same plan."""
    a1, a2, b, dm = _m(1), _m(2), _m(3, channel="C2"), _m(4, "dm", "U1")
    result = plan([a1, a2, b, dm], {}, {}, 0.0, capacity=10)
    assert result.send == (a1, b, dm)
    assert result.waiting == 1


def test_a_busy_lane_waits_and_says_when_it_frees() -> None:
    """A lane paused until t=7 sends nothing at t=5; the plan wakes at 7; other lanes are unaffected."""
    a, b = _m(1), _m(2, channel="C2")
    result = plan([a, b], {}, {lane(a): 7.0}, 5.0, capacity=10)
    assert result.send == (b,)
    assert result.wake_at == 7.0


def test_later_edits_of_one_message_wait_for_its_oldest_pending_one() -> None:
    """An edit whose message has an older pending post or edit (even one not due) is held, not sent."""
    edit = _m(5, "update", priority=Priority.BULK, order_key="grant:g-1")
    other = _m(6, "update", channel="C2", priority=Priority.BULK, order_key="grant:g-2")
    result = plan([edit, other], {"grant:g-1": 2, "grant:g-2": 6}, {}, 0.0, capacity=10)
    assert result.send == (other,)
    assert result.held == 1


def test_the_budget_caps_a_plan() -> None:
    """With capacity 2, only the two most urgent of four free lanes are planned."""
    msgs = [_m(1, channel="A"), _m(2, channel="B", priority=Priority.URGENT), _m(3, channel="C"), _m(4, channel="D")]
    result = plan(msgs, {}, {}, 0.0, capacity=2)
    assert [m.id for m in result.send] == [2, 1]


def test_lanes_are_channels_dm_users_and_uploads() -> None:
    """Posts and edits share their channel's lane; DMs are per user; uploads per channel but apart from posts."""
    assert lane(_m(1)) == lane(_m(2, "update")) == "channel:C1"
    assert lane(_m(3, "dm", "U1")) == "dm:U1"
    assert lane(_m(4, "file", "C1")) == "file:C1"


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Priority)), st.sampled_from(["A", "B", "C"]), st.sampled_from(["", "r1", "r2"])),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=5),
)
def test_a_plan_never_breaks_a_rule(specs: list[tuple[Priority, str, str]], capacity: int) -> None:
    """Whatever is queued: one per lane, never over capacity, only heads of order keys, urgent before the rest."""
    msgs = [_m(i + 1, channel=ch, priority=p, order_key=k) for i, (p, ch, k) in enumerate(specs)]
    heads: dict[str, int] = {}
    for m in msgs:
        if m.order_key:
            heads.setdefault(m.order_key, m.id)
    result = plan(msgs, heads, {}, 0.0, capacity)
    sent = result.send
    assert len(sent) <= capacity
    assert len({lane(m) for m in sent}) == len(sent)
    assert all(not m.order_key or heads[m.order_key] == m.id for m in sent)
    assert [m.priority for m in sent] == sorted(m.priority for m in sent)
    eligible = [m for m in msgs if not m.order_key or heads[m.order_key] == m.id]
    if eligible and capacity:
        best = min(eligible, key=lambda m: (m.priority, m.id))
        assert sent[0] == best

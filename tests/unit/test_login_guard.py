"""The console's sign-in throttle, pure: failures per name and per address within a window, the
right password waiting too, and failures reaching the audit log at a bounded rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.console.login_guard import LoginGuard, LoginLimits

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LIMITS = LoginLimits(per_name=3, per_address=5, window=timedelta(minutes=10), audited_per_minute=2)


def _fail(guard: LoginGuard, name: str, address: str, at: datetime) -> None:
    assert guard.attempt(name, address, at) == 0, f"{name} from {address} was refused at {at}"


def test_a_name_that_failed_too_often_waits_for_the_window_whatever_the_address() -> None:
    guard = LoginGuard(LIMITS)
    for i in range(3):
        _fail(guard, "alice", f"10.0.0.{i}", T0 + timedelta(minutes=i))
    wait = guard.attempt("alice", "10.0.0.99", T0 + timedelta(minutes=3))
    assert wait == timedelta(minutes=7).total_seconds()  # until the first failure leaves the window
    assert guard.attempt("bob", "10.0.0.99", T0 + timedelta(minutes=3)) == 0
    assert guard.attempt("alice", "10.0.0.99", T0 + timedelta(minutes=10, seconds=1)) == 0


def test_an_address_that_failed_too_often_waits_whatever_the_name() -> None:
    guard = LoginGuard(LIMITS)
    for i in range(5):
        _fail(guard, f"guess{i}", "10.0.0.1", T0)
    assert guard.attempt("alice", "10.0.0.1", T0) > 0
    assert guard.attempt("alice", "10.0.0.2", T0) == 0


def test_a_refused_attempt_is_not_counted_so_hammering_does_not_lock_a_name_for_ever() -> None:
    guard = LoginGuard(LIMITS)
    for _ in range(3):
        _fail(guard, "alice", "10.0.0.1", T0)
    for second in range(1, 500):
        assert guard.attempt("alice", f"10.0.{second}.1", T0 + timedelta(seconds=second)) > 0
    assert guard.attempt("alice", "10.0.0.1", T0 + timedelta(minutes=10, seconds=1)) == 0


def test_the_right_password_clears_the_name_but_not_the_address() -> None:
    guard = LoginGuard(LIMITS)
    for _ in range(2):
        _fail(guard, "alice", "10.0.0.1", T0)
    for name in ("x1", "x2"):
        _fail(guard, name, "10.0.0.1", T0)
    _fail(guard, "alice", "10.0.0.1", T0)  # the fifth attempt from the address: the right password
    guard.succeeded("alice", "10.0.0.1", T0)
    for _ in range(2):
        _fail(guard, "alice", "10.0.0.2", T0)  # the name starts again from nothing
    _fail(guard, "x3", "10.0.0.1", T0)  # the address had four failures, and the success is not one
    assert guard.attempt("x4", "10.0.0.1", T0) > 0


def test_attempts_made_at_once_count_before_their_passwords_are_checked() -> None:
    guard = LoginGuard(LIMITS)
    waits = [guard.attempt("alice", f"10.0.0.{i}", T0) for i in range(10)]
    assert waits[:3] == [0, 0, 0] and all(w > 0 for w in waits[3:])


def test_failures_reach_the_audit_log_a_few_a_minute_and_the_next_row_counts_those_left_out() -> None:
    guard = LoginGuard(LIMITS)
    written = [guard.audit_failure(T0 + timedelta(seconds=s)) for s in range(10)]
    assert written == [0, 0, None, None, None, None, None, None, None, None]
    assert guard.audit_failure(T0 + timedelta(minutes=1)) == 8
    assert guard.audit_failure(T0 + timedelta(minutes=1, seconds=1)) == 0


def test_the_guard_remembers_a_bounded_number_of_names_and_addresses() -> None:
    guard = LoginGuard(LIMITS, max_keys=100)
    for i in range(1000):
        guard.attempt(f"name{i}", f"10.0.{i // 250}.{i % 250}", T0)
    assert len(guard._failures) <= 100

"""Operators of the console: roles, password hashes (argon2id), sessions that expire.

A session token is a random secret handed to the operator once (a cookie for the pages, a bearer
token for the API); the store keeps only its SHA-256, so a copy of the store opens no session.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.store.dbapi import UniqueViolation
from hub.store.rows import ts
from hub.store.unit_of_work import Store

_HASHER = PasswordHasher()
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 10
# An argon2 check takes about 100 ms and 64 MiB: two at a time at most, off the event loop.
_CHECKS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="password-check")


class Role(StrEnum):
    """Each role may do what the ones before it may: a viewer sees, an operator acts, an approver
    also approves another operator's REPLACE or edited replay, an admin also manages operators."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class AuthRefused(Exception):
    """Wrong name or password, an expired session, or a bad new operator."""


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role


def require(op: Operator, role: Role) -> None:
    """Raises PermissionError unless `op`'s role allows what `role` may do."""
    if not op.role.allows(role):
        raise PermissionError(f"{op.name} is {op.role.value}; this needs {role.value}")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def _checked(stored_hash: str | None, password: str) -> bool:
    # Without a stored hash, a dummy one is checked all the same: an unknown name takes as long
    # to refuse as a wrong password, so the time of an answer tells no names.
    matches = password_matches(stored_hash or _dummy_hash(), password)
    return matches and stored_hash is not None


async def _password_checked(stored_hash: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_CHECKS, _checked, stored_hash, password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def form_token(secret: str) -> str:
    """The CSRF token of the console's forms, derived from the cookie they go with (the session,
    or before signing in the sign-in form's own cookie): another site can neither read the
    cookie nor compute the token. (A page on another port of the same host could set the sign-in
    form's cookie itself: the pages' origin check stops that one.)"""
    return hmac.new(b"signhub.ops.form", secret.encode(), hashlib.sha256).hexdigest()


async def create_operator(
    store: Store, name: str, role: Role, password: str, *, by: str, now: datetime
) -> None:
    if not _NAME.fullmatch(name):
        raise AuthRefused(
            "a name is 2-32 lower-case letters, digits, '.', '_' or '-', starting with a letter"
        )
    if len(password) < MIN_PASSWORD:
        raise AuthRefused(f"a password needs at least {MIN_PASSWORD} characters")
    row = {"name": name, "role": role.value, "password_hash": hash_password(password), "created_at": ts(now),
           "created_by": by}  # fmt: skip
    try:
        async with store.unit_of_work() as uow:
            await uow.ops().add_operator(row)
    except UniqueViolation:
        raise AuthRefused(f"operator {name!r} exists") from None


async def sign_in(store: Store, name: str, password: str, *, now: datetime, ttl: timedelta) -> str:
    """A new session token for a right name and password; AuthRefused otherwise (same message for
    an unknown name and a wrong password)."""
    row = await store.console().credentials(name)
    matches = await _password_checked(row["password_hash"] if row else None, password)
    if not row or row["disabled"] or not matches:
        raise AuthRefused("wrong name or password")
    token = secrets.token_urlsafe(32)
    async with store.unit_of_work() as uow:
        await uow.ops().add_session(token_hash(token), name, str(ts(now)), str(ts(now + ttl)))
    return token


async def operator_of(store: Store, token: str | None, *, now: datetime) -> Operator | None:
    """The operator of a live session, or None (no token, unknown, expired or disabled)."""
    if not token:
        return None
    row = await store.console().session_operator(token_hash(token))
    if not row or row["expires_at"] <= ts(now):
        return None
    return Operator(row["name"], Role(row["role"]))


async def sign_out(store: Store, token: str) -> None:
    async with store.unit_of_work() as uow:
        await uow.ops().drop_session(token_hash(token))

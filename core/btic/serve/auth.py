"""Who may see the archive: local users with argon2id password hashes, a lockout
after repeated failures, and the check every request passes."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for ``[serve] users`` (argon2-cffi's defaults,
    RFC 9106's second recommended set)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class Logins:
    """Checks passwords against ``users`` (name -> argon2id hash); after
    ``failures`` wrong passwords in a row a name is locked for ``lock_seconds``,
    whatever is tried then. An unknown name costs the same hash as a known one."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        failures: int,
        lock_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        from argon2 import PasswordHasher

        self._hasher = PasswordHasher()
        self._users = dict(users)
        self._limit = failures
        self._lock_seconds = lock_seconds
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()
        # Compared against for unknown names, so timing does not tell names apart.
        self._decoy = self._hasher.hash("btic: no such user")

    def locked(self, name: str) -> bool:
        with self._lock:
            entry = self._failures.get(name)
            return entry is not None and entry.locked_until > self._clock()

    def check(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s; False while ``name`` is locked."""
        from argon2.exceptions import VerificationError, VerifyMismatchError

        if self.locked(name):
            return False
        try:
            self._hasher.verify(self._users.get(name, self._decoy), password)
            right = name in self._users
        except (VerifyMismatchError, VerificationError):
            right = False
        with self._lock:
            if right:
                self._failures.pop(name, None)
                return True
            entry = self._failures.setdefault(name, _Failures())
            entry.count += 1
            if entry.count >= self._limit:
                entry.locked_until = self._clock() + self._lock_seconds
                entry.count = 0
        return False


class Viewers:
    """Who is asking: the user a trusted proxy names in its header (only when the
    request comes from one of ``proxies``), or the local user of the login cookie."""

    def __init__(self, users: Mapping[str, str], proxies: Sequence[Network], header: str):
        self._users = frozenset(users)
        self._proxies = tuple(proxies)
        self._header = header

    def user_of(self, request: Request) -> str | None:
        if self._proxies and self._from_proxy(request):
            named = request.headers.get(self._header, "").strip()
            if named:
                return named
        name = request.session.get("user")
        return name if isinstance(name, str) and name in self._users else None

    def _from_proxy(self, request: Request) -> bool:
        if request.client is None:
            return False
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)

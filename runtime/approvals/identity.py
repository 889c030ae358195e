"""Who is asking: the caller of an approval operation, and what it may see and decide.

Identity reaches the orchestrator's ``ApprovalService`` in gRPC metadata; the gateway copies
the same HTTP headers into it, so REST, the console and ``grpcurl`` are authorised alike:

- ``authorization: Bearer <key>`` (HTTP ``Authorization``);
- ``x-switchboard-tenant`` (HTTP ``X-Switchboard-Tenant``), ``x-switchboard-principal``
  (``X-Switchboard-Principal``) and ``x-switchboard-session`` (``X-Session-ID``).

The bearer key is one of (one identity model for approvals, the gateway and the workflow view):

- a **virtual API key** (``sk-sb-…``, ``switchboard keys create``, ``runtime/keys/store.py``):
  its name is the principal, its tenant the only tenant it may act on;
- the **admin key** (``SWITCHBOARD_ADMIN_API_KEY``): principal ``admin``, every tenant;
- a **decider key** of ``SWITCHBOARD_APPROVAL_DECIDERS``: a comma-separated list of
  ``<key>=<principal>:<tenants>``, ``<tenants>`` being ``|``-separated tenant names or ``*`` for
  all, e.g. ``k1=alice:acme,k2=ops:*``.

Keys are required when deciders are listed, when any virtual key exists, or when
``SWITCHBOARD_AUTH_REQUIRED`` is set: the principal and its tenants then come from the key alone
(the tenant and principal headers are ignored, so a caller cannot claim another tenant).
Otherwise (**trusted**, the single-machine default) the headers are believed; the tenant
defaults to ``default`` and the principal to ``anonymous``.

In both modes a session header narrows the caller to that session's approvals: that is
how a chat user decides only what their own conversation is waiting for.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from runtime.errors import ApprovalForbiddenError, ConfigError, NotAuthenticatedError
from switchboard.v1 import approval_pb2, keys_pb2

DEFAULT_TENANT = "default"
AUTHORIZATION = "authorization"
TENANT = "x-switchboard-tenant"
PRINCIPAL = "x-switchboard-principal"
SESSION = "x-switchboard-session"
SYSTEM = "system"
"""The actor of transitions nobody asked for (timeouts, reminders)."""
ADMIN = "admin"
"""The principal of the admin key."""
VIRTUAL_KEY_PREFIX = "sk-sb-"


class KeyLookup(Protocol):
    """Where virtual keys are checked (``runtime.keys.store.KeyStore``)."""

    async def exist(self) -> bool: ...

    async def authenticate(self, secret: str) -> tuple[keys_pb2.ApiKey | None, str]: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """A principal and the tenants (None: all) and sessions (None: all) it may act on."""

    principal: str
    tenants: frozenset[str] | None
    sessions: frozenset[str] | None = None
    key: keys_pb2.ApiKey | None = None
    """The virtual key the caller presented, if it was one (its limits and models)."""
    admin: bool = False

    def home_tenant(self, asked: str = "") -> str:
        """The tenant the caller's work runs for: its key's, else ``asked`` when allowed, else its only one."""
        if self.key is not None:
            return self.key.tenant
        if asked and self.may_see_tenant(asked):
            return asked
        if self.tenants is not None and len(self.tenants) == 1:
            return next(iter(self.tenants))
        return DEFAULT_TENANT

    def may_see_tenant(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants

    def allows(self, request: approval_pb2.ApprovalRequest) -> bool:
        return self.may_see_tenant(request.tenant) and (self.sessions is None or request.session_id in self.sessions)

    def check(self, request: approval_pb2.ApprovalRequest) -> None:
        if not self.allows(request):
            raise ApprovalForbiddenError(
                f"{self.principal!r} may not act on approval {request.id!r} "
                f"(tenant {request.tenant!r}, session {request.session_id!r})"
            )


SYSTEM_CALLER = Caller(SYSTEM, None)


@dataclass(frozen=True, slots=True)
class Decider:
    principal: str
    tenants: frozenset[str] | None


def parse_deciders(spec: str) -> dict[str, Decider]:
    """``k1=alice:acme|beta,k2=ops:*`` → {key: Decider}; raises ConfigError on a malformed entry."""
    deciders: dict[str, Decider] = {}
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        key, sep, rest = entry.partition("=")
        principal, sep2, tenants = rest.partition(":")
        if not sep or not sep2 or not key.strip() or not principal.strip() or not tenants.strip():
            raise ConfigError(
                f"SWITCHBOARD_APPROVAL_DECIDERS entry {entry.split('=')[0]}=… is not <key>=<principal>:<tenants>"
            )
        names = frozenset(t.strip() for t in tenants.split("|") if t.strip())
        deciders[key.strip()] = Decider(principal.strip(), None if "*" in names else names)
    return deciders


class CallerResolver:
    """Turns call metadata into a :class:`Caller`, under the mode the settings and the keys pick."""

    def __init__(
        self,
        deciders: Mapping[str, Decider],
        *,
        keys: KeyLookup | None = None,
        admin_key: str = "",
        auth_required: bool = False,
        deciders_require_keys: bool = True,
    ) -> None:
        """``deciders_require_keys``: listed deciders make every call need a key (approvals); False
        leaves that to virtual keys and the setting (the workflow view, the gateway)."""
        self._deciders = dict(deciders)
        self._keys = keys
        self._admin_key = admin_key
        self._auth_required = auth_required
        self._deciders_require_keys = deciders_require_keys

    @classmethod
    def from_spec(
        cls,
        spec: str,
        *,
        keys: KeyLookup | None = None,
        admin_key: str = "",
        auth_required: bool = False,
        deciders_require_keys: bool = True,
    ) -> CallerResolver:
        return cls(
            parse_deciders(spec),
            keys=keys,
            admin_key=admin_key,
            auth_required=auth_required,
            deciders_require_keys=deciders_require_keys,
        )

    async def requires_keys(self) -> bool:
        """Whether every caller must present a key (deciders listed, keys exist, or the setting)."""
        if (self._deciders and self._deciders_require_keys) or self._auth_required:
            return True
        return self._keys is not None and await self._keys.exist()

    async def resolve(self, metadata: Iterable[tuple[str, str | bytes]]) -> Caller:
        values: dict[str, str] = {}
        for name, value in metadata:
            if isinstance(value, str):
                values.setdefault(name.lower(), value)
        session = values.get(SESSION, "").strip()
        sessions = frozenset({session}) if session else None
        scheme, _, token = values.get(AUTHORIZATION, "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
        caller = await self.from_key(key, sessions)
        if caller is not None:
            return caller
        if await self.requires_keys():
            raise NotAuthenticatedError(
                "this call needs 'Authorization: Bearer <key>' with a valid API key "
                "(a virtual key, the admin key or one of SWITCHBOARD_APPROVAL_DECIDERS)"
            )
        tenant = values.get(TENANT, "").strip() or DEFAULT_TENANT
        principal = values.get(PRINCIPAL, "").strip() or "anonymous"
        return Caller(principal, frozenset({tenant}), sessions)

    async def from_key(self, key: str, sessions: frozenset[str] | None = None) -> Caller | None:
        """The caller ``key`` names; None for no key, or a key nobody knows while keys are not required.

        A virtual key that is wrong, revoked or expired is refused even when keys are not
        required: its user meant to use it and must hear why it does not work.
        """
        if not key:
            return None
        if self._admin_key and hmac.compare_digest(key.encode(), self._admin_key.encode()):
            return Caller(ADMIN, None, sessions, admin=True)
        decider = self._deciders.get(key)
        if decider is not None:
            return Caller(decider.principal, decider.tenants, sessions)
        if self._keys is not None and key.startswith(VIRTUAL_KEY_PREFIX):
            found, why = await self._keys.authenticate(key)
            if found is None:
                raise NotAuthenticatedError(why)
            return Caller(found.name, frozenset({found.tenant}), sessions, key=found)
        if await self.requires_keys():
            raise NotAuthenticatedError("Incorrect API key provided.")
        return None

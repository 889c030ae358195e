"""Who is asking: the caller of an approval operation, and what it may see and decide.

Identity reaches the orchestrator's ``ApprovalService`` in gRPC metadata; the gateway copies
the same HTTP headers into it, so REST, the console and ``grpcurl`` are authorised alike:

- ``authorization: Bearer <key>`` (HTTP ``Authorization``);
- ``x-switchboard-tenant`` (HTTP ``X-Switchboard-Tenant``), ``x-switchboard-principal``
  (``X-Switchboard-Principal``) and ``x-switchboard-session`` (``X-Session-ID``).

Two modes, chosen by ``SWITCHBOARD_APPROVAL_DECIDERS``:

- **keys** (the variable is set): a comma-separated list of ``<key>=<principal>:<tenants>``,
  ``<tenants>`` being ``|``-separated tenant names or ``*`` for all, e.g.
  ``k1=alice:acme,k2=ops:*``. Every call must carry one of the keys; the principal and its
  tenants come from the key alone (the tenant and principal headers are ignored, so a
  caller cannot claim another tenant).
- **trusted** (unset, the single-machine default): the headers are believed; the tenant
  defaults to ``default`` and the principal to ``anonymous``.

In both modes a session header narrows the caller to that session's approvals: that is
how a chat user decides only what their own conversation is waiting for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runtime.errors import ApprovalForbiddenError, ConfigError, NotAuthenticatedError
from switchboard.v1 import approval_pb2

DEFAULT_TENANT = "default"
AUTHORIZATION = "authorization"
TENANT = "x-switchboard-tenant"
PRINCIPAL = "x-switchboard-principal"
SESSION = "x-switchboard-session"
SYSTEM = "system"
"""The actor of transitions nobody asked for (timeouts, reminders)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """A principal and the tenants (None: all) and sessions (None: all) it may act on."""

    principal: str
    tenants: frozenset[str] | None
    sessions: frozenset[str] | None = None

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
    """Turns call metadata into a :class:`Caller`, under the mode the settings pick."""

    def __init__(self, deciders: Mapping[str, Decider]) -> None:
        self._deciders = dict(deciders)

    @classmethod
    def from_spec(cls, spec: str) -> CallerResolver:
        return cls(parse_deciders(spec))

    @property
    def requires_keys(self) -> bool:
        return bool(self._deciders)

    def resolve(self, metadata: Iterable[tuple[str, str | bytes]]) -> Caller:
        values: dict[str, str] = {}
        for name, value in metadata:
            if isinstance(value, str):
                values.setdefault(name.lower(), value)
        session = values.get(SESSION, "").strip()
        sessions = frozenset({session}) if session else None
        if self._deciders:
            token = values.get(AUTHORIZATION, "")
            scheme, _, key = token.partition(" ")
            decider = self._deciders.get(key.strip()) if scheme.lower() == "bearer" else None
            if decider is None:
                raise NotAuthenticatedError(
                    "approvals need 'Authorization: Bearer <key>' with a key listed in SWITCHBOARD_APPROVAL_DECIDERS"
                )
            return Caller(decider.principal, decider.tenants, sessions)
        tenant = values.get(TENANT, "").strip() or DEFAULT_TENANT
        principal = values.get(PRINCIPAL, "").strip() or "anonymous"
        return Caller(principal, frozenset({tenant}), sessions)

"""Who calls a tool: the API key's user and the key itself. It stands in for the API's
request where the API's helpers take one (`request.user`, `request.auth`), so the MCP
server asks the same policy questions the same way (stories.api.permissions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict


@dataclass(frozen=True)
class Caller:
    user: Any
    auth: Any  # the sessions_app ApiKey the call was authenticated with
    query_params: QueryDict = field(default_factory=QueryDict)

    @property
    def read_only(self) -> bool:
        return bool(getattr(self.auth, "read_only", False))

    @property
    def key_id(self) -> int | None:
        return getattr(self.auth, "pk", None)

    def with_query(self, params: dict[str, Any]) -> Caller:
        """A copy carrying `params` as the query string the API's list helpers read."""
        query = QueryDict(mutable=True)
        for name, value in params.items():
            if isinstance(value, list):
                query.setlist(name, [str(v) for v in value])
            elif isinstance(value, bool):
                query[name] = "true" if value else "false"
            else:
                query[name] = str(value)
        return Caller(user=self.user, auth=self.auth, query_params=query)

"""Refusing webhook targets on loopback, private, link-local and other non-public
addresses (SSRF). Checked when an endpoint is saved and again at every delivery, on the
addresses the name resolves to then; the delivery connects to the address it checked,
so a DNS answer that changes in between (rebinding) cannot redirect it.
WEBHOOKS_ALLOW_PRIVATE_TARGETS=true lifts the rule (local development, tests)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class TargetRefused(Exception):
    """The URL may not be called; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str  # the checked IP address to connect to


def _why_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for what, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return what
    if not address.is_global:
        return "not public"
    return None


def resolve_target(url: str) -> Target:
    """Parse and resolve `url`; TargetRefused unless it is http(s) to a public address
    (every address the name resolves to must be public)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("Give an http:// or https:// URL with a host name.")
    if parts.username or parts.password:
        raise TargetRefused("Credentials in the URL are not allowed; use the signature to authenticate.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"Cannot resolve {parts.hostname}: {exc}.") from None
    addresses = [str(info[4][0]) for info in infos]
    if not getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_TARGETS", False):
        for text in addresses:
            why = _why_refused(ipaddress.ip_address(text.split("%")[0]))
            if why:
                raise TargetRefused(
                    f"{parts.hostname} resolves to {text}, a {why} address; webhooks go to public hosts."
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path, address=addresses[0])

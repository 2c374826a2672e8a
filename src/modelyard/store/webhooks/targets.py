"""Where webhook deliveries may go: the server-side request forgery (SSRF) guard.

A webhook makes the tracking service POST to a URL a user typed, from inside the team's network. So:

- link-local addresses (169.254.0.0/16, which holds the cloud metadata service 169.254.169.254 and
  its credentials, and fe80::/10), AWS's IPv6 metadata address, and unspecified, multicast and
  reserved addresses are never targets;
- loopback and private addresses (127/8, 10/8, 172.16/12, 192.168/16, 100.64/10, ::1, fc00::/7) are
  targets only with `MODELYARD_WEBHOOK_ALLOW_PRIVATE=true` (a receiver inside the cluster);
- a URL naming an address is checked when the webhook is saved; a host name is resolved and every
  address it resolves to is checked at each attempt, and the attempt connects to the address that
  was checked (TLS still verifies the certificate for the name), so a name that re-resolves between
  the check and the connection (DNS rebinding) cannot point the request elsewhere.

A refused attempt is a failed attempt in the delivery log, with the reason.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

#: Names of cloud metadata services (they resolve to link-local addresses, refused anyway).
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"})
_AWS_IPV6_METADATA = ipaddress.ip_address("fd00:ec2::254")
#: Private ranges (with loopback: allowed by the setting): RFC 1918, shared CGNAT space, unique local IPv6.
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


def refusal(ip: IPAddress, allow_private: bool) -> str | None:
    """Why `ip` may not be a webhook target, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip == _AWS_IPV6_METADATA or ip.is_link_local:
        return f"{ip} is a link-local address (the cloud metadata service lives there)"
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a unicast address"
    if ip.is_loopback or any(ip in net for net in _PRIVATE if net.version == ip.version):
        if allow_private:
            return None
        return f"{ip} is a private or loopback address (set MODELYARD_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
    if not ip.is_global:
        return f"{ip} is not a public address (reserved or special-purpose)"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, allow_private: bool) -> None:
    """When a webhook is saved: a host that is an address (or a metadata service's name) must be allowed.
    Names are not resolved here (the receiver may not exist yet); every attempt checks them."""
    host = (urllib.parse.urlsplit(url).hostname or "").rstrip(".").lower()
    if host in METADATA_HOSTS:
        raise TargetRefused(f"{host} is a cloud metadata service")
    ip = _literal(host)
    if ip is not None and (why := refusal(ip, allow_private)) is not None:
        raise TargetRefused(why)


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: `url` names the checked address; `host` goes in the Host header
    and `hostname` is what TLS checks the certificate against."""

    url: str
    host: str
    hostname: str


def resolve(url: str, allow_private: bool) -> Target:
    """Resolve the URL's host now, check every address it has, and pin the attempt to the first."""
    check_url(url, allow_private)
    parts = urllib.parse.urlsplit(url)
    hostname = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"cannot resolve {hostname}: {exc}") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    for ip in addresses:
        if (why := refusal(ip, allow_private)) is not None:
            raise TargetRefused(f"{hostname} resolves to {why}")
    ip = addresses[0]
    netloc = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    host = parts.netloc.rpartition("@")[2]  # as the URL spells it, without credentials
    return Target(urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host, hostname)

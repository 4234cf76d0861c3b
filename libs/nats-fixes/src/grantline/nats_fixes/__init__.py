"""Fixes for two nats-py (2.16) bugs that Grantline's services and app runners share.

A package of its own because both the service runtime (grantline.runtime) and the runner SDK
(grantline.runner, which must not need the service stack) install them before they connect:

- ``tls_handshake``: after a failed TLS handshake the client waited forever instead of retrying
  (nats-io/nats.py#382, #718).
- ``ordered_flush``: ``flush()`` could return before the server had read the commands sent before it,
  because the PING overtook them.

Remove each once nats-py fixes it; the tests named in each module fail when an upgrade changes what
the fix relies on.
"""

from __future__ import annotations

from grantline.nats_fixes import ordered_flush, tls_handshake


def install() -> None:
    """Install every fix, once per process (idempotent); call it before connecting."""
    tls_handshake.install()
    ordered_flush.install()

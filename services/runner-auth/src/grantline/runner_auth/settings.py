"""Settings of runner-auth (environment variables with the ``GRANTLINE_`` prefix)."""

from pathlib import Path

from pydantic import Field, SecretStr

from grantline.runtime.settings import ServiceSettings


class RunnerAuthSettings(ServiceSettings):
    service_name: str = "runner-auth"
    http_port: int = 8085

    # The callout issuer: an account nkey seed (SA...), whose public key is the nats-server's
    # `auth_callout { issuer }`. Given inline or as a file (a mounted Secret); never logged.
    runner_auth_issuer_seed: SecretStr | None = None
    runner_auth_issuer_seed_file: Path | None = None

    # The system-account user that may only find (CONNZ) and close (KICK) connections.
    runner_auth_kick_user: str = "runner-auth-kick"
    runner_auth_kick_password: SecretStr | None = None
    runner_auth_kick_inbox_prefix: str = "_INBOX.runner-auth-kick"

    # Lifetime of the user JWT a runner gets: the server closes the connection when it expires and
    # the client reconnects through the callout again. A bound on any missed kick, nothing more.
    runner_auth_user_jwt_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # How often the sweep closes the connections of revoked runners (0 disables it).
    runner_auth_sweep_interval_seconds: float = Field(default=1.0, ge=0)
    # How long to collect CONNZ answers from the servers of a cluster.
    runner_auth_connz_collect_seconds: float = Field(default=0.5, gt=0, le=10)

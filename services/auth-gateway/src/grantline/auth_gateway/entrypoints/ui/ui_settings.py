"""Settings of the browser pages (environment variables with the ``GRANTLINE_`` prefix)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class UiSettings(BaseSettings):
    """Read beside the gateway's own settings; only the browser pages use these."""

    model_config = SettingsConfigDict(env_prefix="GRANTLINE_", extra="ignore", frozen=True)

    # Key that signs the browser-session cookies (>= 32 characters), shared by every replica. Unset: a
    # random key per process, allowed only outside production (one local process).
    ui_session_secret: SecretStr | None = Field(default=None, min_length=32)
    # How long an admin session lasts after signing in with the tenant API key.
    admin_session_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    # How long the end user's connect-page cookie lasts (never beyond the connect session itself).
    connect_cookie_ttl_seconds: int = Field(default=1800, ge=60, le=86400)

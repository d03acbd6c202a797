"""Console configuration, read from the environment (prefix ``HANAMI_CONSOLE_``).

Settings are built by the CLI or by tests and handed to :func:`webconsole.app.create_app`; nothing
here is instantiated at import time.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the console needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="HANAMI_CONSOLE_", extra="ignore")

    backend_url: str = Field(
        "http://127.0.0.1:11418", description="Base URL of the Hanami backend (without /control)."
    )
    backend_verify_tls: bool = Field(
        True, description="Verify the backend's TLS certificate (off for self-signed installs)."
    )
    backend_timeout: float = Field(30.0, gt=0, description="Seconds to wait for one backend call.")
    backend_max_websockets: int = Field(
        2, ge=1, le=3, description="Backend websockets open at once (Hanami has 4 worker threads)."
    )
    secret_key: SecretStr | None = Field(
        None, description="Key for session encryption and signing; at least 32 characters."
    )
    session_store_url: str = Field(
        "sqlite:///console-sessions.db",
        description="Where sessions live: sqlite:///path, memory://, or redis://host:port/db.",
    )
    session_idle_timeout: int = Field(1800, gt=0, description="Seconds of inactivity before logout.")
    session_absolute_timeout: int = Field(
        43200, gt=0, description="Seconds after login at which a session ends regardless."
    )
    token_renew_margin: int = Field(
        600, ge=0, description="Renew the Hanami token when it expires within this many seconds."
    )
    cookie_secure: bool | None = Field(
        None, description="Secure cookie flag; unset = on when the request came over https."
    )
    root_path: str = Field("", description="URL prefix when served behind a proxy, e.g. /console.")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra origins allowed for state changes and websockets (comma separated).",
    )
    trusted_proxies: str = Field(
        "127.0.0.1", description="Proxies whose X-Forwarded-* headers are believed ('*' for all)."
    )
    login_rate_limit: int = Field(
        10, ge=1, description="Failed logins allowed per client address and per user id in 15 minutes."
    )
    direct_io_idle_timeout: int = Field(
        300, gt=0, description="Seconds a direct-IO bridge may sit idle before it is closed."
    )
    cleanup_interval: float = Field(
        30.0, gt=0, description="Seconds between retries of owed clean-ups (half-made datasets to delete)."
    )
    upload_dir: str | None = Field(
        None, description="Folder for uploads being validated (default: the system temp folder)."
    )
    max_upload_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest accepted upload file, in bytes."
    )
    policy_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["admin", "member"],
        description="Roles the backend's access policy grants something (comma separated); the roles "
                    "offered when a user is assigned to a project.",
    )
    log_level: str = Field("info", description="debug, info, warning or error.")
    log_format: Literal["text", "json"] = Field("text", description="text or json (one object a line).")
    readiness_user_id: str | None = Field(
        None, description="Hanami account /readyz logs in with to see that the backend lists a host."
    )
    readiness_password: SecretStr | None = Field(None, description="Password of the readiness account.")

    @field_validator("policy_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("root_path")
    @classmethod
    def _normalise_root_path(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith("/"):
            value = "/" + value
        return value

    @field_validator("backend_url")
    @classmethod
    def _strip_backend_url(cls, value: str) -> str:
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _check_secret(self) -> "Settings":
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("HANAMI_CONSOLE_SECRET_KEY must be at least 32 characters long")
        if self.session_idle_timeout > self.session_absolute_timeout:
            raise ValueError("the idle timeout cannot be longer than the absolute session timeout")
        return self

    def require_secret(self) -> str:
        """The secret key; refuses to run without one (``serve`` must never invent it)."""
        if self.secret_key is None:
            raise ValueError(
                "HANAMI_CONSOLE_SECRET_KEY is not set: generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return self.secret_key.get_secret_value()

    def with_generated_secret(self) -> "Settings":
        """A copy with a fresh random secret (for the demo and tests, where nothing persists)."""
        if self.secret_key is not None:
            return self
        return self.model_copy(update={"secret_key": SecretStr(secrets.token_urlsafe(48))})

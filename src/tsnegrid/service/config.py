"""Service configuration: one pydantic-settings object, read from arguments and the environment.

Every field can be set with an environment variable ``TSNEGRID_SERVICE_<NAME>``; the CLI passes
``--data``, ``--db``, ``--blobs``, ``--host``, ``--port``, ``--workers`` and ``--scheduler``
explicitly. Pipeline defaults stay in ``Settings``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from tsnegrid.errors import InputError
from tsnegrid.settings import Settings

ENV_PREFIX = "TSNEGRID_SERVICE_"


class ServiceConfig(BaseSettings):
    """Where the service keeps its data, and the limits it enforces."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True)

    data_dir: Path = Field(description="Folder holding the database, blobs and cache.")
    db: str | None = Field(None, description="Database URL: sqlite:///PATH or "
                                             "postgresql://USER:PASS@HOST/DB (default: SQLite "
                                             "in DATA).")
    blobs: str | None = Field(None, description="Blob store: a folder or an fsspec URL such as "
                                                "file:///shared/blobs or s3://bucket/prefix "
                                                "(default: DATA/blobs).")
    scheduler: str = Field("", description="Dask scheduler address (tcp://host:8786) on which "
                                           "jobs embed (empty: in the worker process).")
    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8080, ge=0, le=65535, description="Port to bind.")
    grpc_port: int = Field(18080, ge=0, le=65535, description="Port of the gRPC service "
                           "(clarifai.api.V2, for the current Clarifai clients), on the same "
                           "address (0: no gRPC). 18080 is clarifai-grpc's own default.")
    tls_cert: Path | None = Field(None, description="TLS certificate (PEM) for both HTTP and "
                                  "gRPC; with tls_key, the service answers https:// only.")
    tls_key: Path | None = Field(None, description="The certificate's private key (PEM).")
    public_url: str = Field("", description="The service's address as clients reach it "
                            "(https://images.example.org): urls in answers start with it "
                            "(default: as the request came, or for gRPC this server's own "
                            "HTTP address).")
    workers: int = Field(1, ge=0, le=64, description="Job worker processes (0: none; tests "
                                                     "drain jobs in-process).")
    threads: int = Field(Settings.threads, ge=0, description="CPU threads per job for "
                                                              "inference (0: all cores).")
    cache_dir: Path | None = Field(None, description="Embedding/model cache (default "
                                                     "DATA/cache).")
    max_body_bytes: int = Field(32 * 2**20, ge=1024, description="Largest request body.")
    max_inputs_per_request: int = Field(128, ge=1, description="Inputs per POST /v2/inputs.")
    max_image_bytes: int = Field(10 * 2**20, ge=1, description="Largest encoded image.")
    max_metadata_bytes: int = Field(16 * 2**10, ge=2, description="Largest metadata of one "
                                    "input, as compact UTF-8 JSON (a full page of "
                                    "ListInputs holds at most PAGE_SIZE_MAX times this).")
    max_image_pixels: int = Field(40_000_000, ge=1, description="Largest decoded image "
                                                                "(width x height).")
    decode_budget_bytes: int = Field(256 * 2**20, ge=2**20, description="Memory for the "
                                     "decoded pixels of uploads checked at the same time; "
                                     "further uploads wait (one larger image runs alone).")
    max_jobs_per_app: int = Field(2, ge=1, description="Pending + running visualizations "
                                                       "per app.")
    max_jobs: int = Field(20, ge=1, description="Pending + running visualizations of all "
                                                "apps together.")
    max_inputs_per_visualization: int = Field(10_000, ge=1, description="Images in one grid.")
    max_attempts: int = Field(3, ge=1, description="Times a job is started before it is "
                                                   "failed (a worker that dies mid-job "
                                                   "counts).")
    url_timeout_s: float = Field(10.0, gt=0, description="Total time to fetch one image url.")
    url_max_redirects: int = Field(5, ge=0, description="Redirects followed per url.")
    url_fetches_max: int = Field(16, ge=1, description="Url inputs fetched at the same time "
                                 "by this server (the rest wait up to url_timeout_s).")
    url_fetches_per_app: int = Field(4, ge=1, description="Url inputs of one app fetched at "
                                     "the same time.")
    url_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Networks (CIDR) or host names that url fetching may "
        "reach even though they are private, loopback or link-local (a JSON list or "
        "comma-separated).")
    blob_grace_s: float = Field(600.0, ge=0, description="A blob of a deleted input or "
                                "visualization is collected once nothing uses it and it was "
                                "not written again for this long; also the age of a leftover "
                                ".tmp- file in a shared blob store that start-up removes.")
    header_timeout_s: float = Field(10.0, gt=0, description="Time a client has to send a "
                                    "request's headers (from its first byte, or from the "
                                    "connection); then 408 and the connection is closed.")
    body_timeout_s: float = Field(60.0, gt=0, description="Time a client has to send a "
                                  "request's body once its headers are in; then 408 and the "
                                  "connection is closed.")
    auth_failures_per_min: int = Field(20, ge=0, description="Failed authentications a "
                                       "client address may make a minute (as a burst, then "
                                       "at this rate); beyond, it is answered 429 "
                                       "(0: no limit).")
    page_size_max: int = Field(1000, ge=1, description="Largest per_page on list endpoints.")
    poll_interval_s: float = Field(0.5, gt=0, description="How often an idle worker looks for "
                                                          "jobs.")
    lease_s: float = Field(60.0, gt=0, description="A running job's lease, renewed every "
                                                   "quarter of it; a job whose lease ran out "
                                                   "(its worker was lost) is queued again.")

    @field_validator("url_allow", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        """A JSON list, or a comma-separated string (``10.0.0.0/8, images.intranet``)."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list: {exc.msg}") from None
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("url_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            if "/" in entry:  # meant as a network: it must be one
                try:
                    ipaddress.ip_network(entry.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not a network (CIDR)") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"must be an http(s) url such as https://images.example.org, not "
                             f"{value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_pair(self) -> ServiceConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together: give both or neither")
        for name, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key)):
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path}: no such file")
        if self.grpc_port and self.grpc_port == self.port:
            raise ValueError(f"--grpc-port and --port are both {self.port}; give two ports "
                             f"(--grpc-port 0: no gRPC)")
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def http_base(self) -> str:
        """Where this server's HTTP side answers, as clients should call it."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"{self.scheme}://{'[' + host + ']' if ':' in host else host}:{self.port}"

    @field_validator("scheduler")
    @classmethod
    def _scheduler_address(cls, value: str) -> str:
        if value and "://" not in value:
            raise ValueError(f"scheduler must be an address such as tcp://host:8786, not "
                             f"{value!r}")
        return value

    @property
    def db_url(self) -> str:
        """The database URL, ``db`` or the default SQLite file in the data folder."""
        return self.db or f"sqlite:///{self.data_dir / 'service.sqlite'}"

    @property
    def blob_url(self) -> str:
        """The blob store, ``blobs`` or the default folder in the data folder."""
        return self.blobs or str(self.data_dir / "blobs")

    @property
    def node(self) -> str:
        """This server's name in the job table: host and data folder (one server per folder)."""
        folder = str(self.data_dir.resolve())
        if len(folder) > 200:  # the column holds 300 characters
            folder = hashlib.sha256(folder.encode()).hexdigest()[:32]
        return f"{socket.gethostname()[:64]}:{folder}"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def cache(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.data_dir / "cache"


class ConfigError(InputError):
    """A setting (option or environment variable) has a value the service cannot use."""


def _where(field: str, explicit: set[str]) -> str:
    return f"--{field.replace('_', '-')}" if field in explicit else f"{ENV_PREFIX}{field.upper()}"


def load_config(**values: Any) -> ServiceConfig:
    """``ServiceConfig`` from explicit values plus the environment; a bad setting raises
    ``ConfigError`` in one line naming the option or environment variable and the problem."""
    explicit = {k for k, v in values.items() if v is not None}
    try:
        return ServiceConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across settings: its message names them
                parts.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            field = str(err["loc"][0])
            shown = repr(err["input"]) if isinstance(err.get("input"), str | int | float) else ""
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{_where(field, explicit)}: {msg}" + (f" (got {shown})" if shown
                                                                else ""))
        raise ConfigError("; ".join(parts)) from None
    except SettingsError as exc:  # the environment source could not parse a value
        found = re.search(r'field "(\w+)"', str(exc))
        field = found.group(1) if found else "?"
        raise ConfigError(f"{_where(field, explicit)}: cannot parse the value") from None

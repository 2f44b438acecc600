"""Settings: the only place that reads the environment.

Every setting can be given as an environment variable with the ``SOURCEBOOK_`` prefix
(``SOURCEBOOK_DATABASE_URL``, ``SOURCEBOOK_MAX_UPLOAD_MB`` ...) or in the ``.env`` file of
the Sourcebook home (:func:`sourcebook_home`). Relative folders are relative to that home,
never to the working folder, so the CLI, the server and the worker find one archive
wherever they are started.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pipelines.models import ASR_BACKENDS
from pipelines.threads import job_threads
from service.filemodes import open_private, private_dir, tighten


def sourcebook_home() -> Path:
    """The folder that holds the archive by default, and its ``.env``.

    ``SOURCEBOOK_HOME`` if set (an environment variable only: the ``.env`` is read from
    the home, so it cannot move it); else the checkout this code runs from (the folder
    with ``pyproject.toml`` above ``service/``); else, for an installed package,
    ``$XDG_DATA_HOME/sourcebook`` (``~/.local/share/sourcebook``).
    """
    configured = os.environ.get("SOURCEBOOK_HOME", "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    data_home = os.environ.get("XDG_DATA_HOME", "").strip()
    return (Path(data_home) if data_home else Path.home() / ".local" / "share") / "sourcebook"


class Settings(BaseSettings):
    """Runtime configuration of the service, the worker and the CLI."""

    model_config = SettingsConfigDict(env_prefix="SOURCEBOOK_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The home's .env, not the working folder's: a `.env` wherever a command happens
        # to run must not point it at another archive.
        home_env = DotEnvSettingsSource(settings_cls, env_file=sourcebook_home() / ".env")
        return init_settings, env_settings, home_env, file_secret_settings

    data_dir: Path = Field(Path("data"), description="SQLite database, queue and secret key "
                           "(relative folders here and below: relative to the home).")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    recordings_dir: Path = Field(Path("recordings"), description="Original and normalised media.")
    transcripts_dir: Path = Field(Path("transcripts"), description="Exports and reports.")
    models_dir: Path = Field(Path("models"), description="Weights: `sourcebook models install`.")
    redis_url: str = Field("", description="redis://host:port/db; empty means the embedded queue.")
    max_upload_mb: int = Field(4096, ge=1, description="Largest accepted upload in MiB.")
    max_duration_hours: float = Field(
        4.0, gt=0, le=1000,
        description="Longest accepted recording in hours: checked at upload against what "
        "the file says, and while normalising against what it really decodes to.",
    )
    withhold_margin: float = Field(
        0.5, ge=0, le=10,
        description="Seconds around a withheld span whose words are withheld from authors "
        "too, where a segment's words have real times; the rest of the segment stays readable.",
    )
    max_json_kb: int = Field(
        1024, ge=1, description="Largest JSON (or other non-upload) request body in KiB; "
        "larger ones get 413 before they are read.")
    max_import_mb: int = Field(
        20, ge=1, description="Largest transcript, outline or manuscript body (SRT, WebVTT, "
        "Sourcebook JSON, Markdown) in MiB: a 3-hour interview's VTT is a few MiB.")
    token_ttl_days: int | None = Field(
        None, ge=1, description="Days an API token works after it was issued (older tokens "
        "too); unset = tokens do not expire. Web sign-ins last at most 14 days regardless.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    secret_key: str = Field(
        "",
        description="Key for hashing API tokens; empty means one generated in data_dir/secret_key.",
    )

    asr_backend: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    whisper_model: str = Field("base", description="'base', 'tiny.en' or a CT2 model directory.")
    openai_whisper_model: str = Field("base", description="'base', 'tiny.en' or a .pt checkpoint.")
    diarization_pipeline: str = Field("", description="pyannote pipeline dir; empty = bundled.")
    compute_type: str = Field(
        "int8", description="CTranslate2 compute type: int8, float32 ...; on CUDA the "
        "default int8 becomes float16 (other values are kept).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "cpu", description="Where a worker runs the models. cpu (the default, the tested "
        "path); cuda (needs CUDA builds of torch and CTranslate2; fails with a message if no "
        "device is visible); auto: cuda when both see a device, else cpu.")
    beam_size: int = Field(5, ge=1, le=10)

    voice_auto_apply: bool = Field(
        False, description="Name an unnamed speaker by voice without asking when the "
        "suggestion's similarity reaches pipelines.voices.AUTO_APPLY_THRESHOLD (0.80); off: "
        "suggestions wait for a researcher's click.")

    seeds_dir: Path | None = Field(
        None, description="The product owner's seed documents (book, interview notes); "
        "`sourcebook samples` uses them when present. Unset: ../shared/seeds beside the project.")

    web_workers: int = Field(
        1, ge=1, le=64,
        description="Processes `serve` runs (each with its own database pool); more than one "
        "uses more cores. Without Redis each also runs its embedded job threads.",
    )
    embedded_workers: int = Field(
        1, ge=0, description="Job threads of the worker that `serve` runs without Redis."
    )
    embedded_mode: Literal["process", "thread"] = Field(
        "process", description="Where `serve` runs those job threads without Redis: "
        "'process' (a child worker process at lower CPU priority; the API process never "
        "runs model work) or 'thread' (inside the API process, at lower priority per thread).")
    job_threads: int | None = Field(
        None, ge=1, le=1024, description="torch and CTranslate2 threads per job; unset = "
        "the cores divided by the job threads that run at once in the process. Set it when "
        "several worker processes share one machine: job threads x processes <= cores.")
    job_nice: int = Field(
        10, ge=0, le=19, description="CPU nice value of model work (embedded and `sourcebook "
        "worker`): requests beside a running job get the CPU first; 0 = normal priority.")
    job_max_attempts: int = Field(3, ge=1)
    job_stale_seconds: int = Field(
        120, ge=10, description="A running job with no heartbeat for this long is re-queued."
    )

    def threads_per_job(self, jobs_at_once: int) -> int:
        """torch and CTranslate2 threads of each job when ``jobs_at_once`` run in one
        process (the rule is :func:`pipelines.threads.job_threads`)."""
        return job_threads(jobs_at_once, override=self.job_threads)

    @field_validator("token_ttl_days", "job_threads", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `SOURCEBOOK_TOKEN_TTL_DAYS=` in .env means "no expiry" (and an empty
        # SOURCEBOOK_JOB_THREADS "the rule"), not a parse error.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        home = sourcebook_home()
        for name in ("data_dir", "recordings_dir", "transcripts_dir", "models_dir"):
            folder: Path = getattr(self, name)
            if not folder.is_absolute():
                setattr(self, name, home / folder.expanduser())
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'sourcebook.db').resolve()}"
        return self

    def asr_default(self, backend: str | None = None) -> tuple[str, str]:
        """(backend, model spec) of a run that names no model: ``backend`` (or the
        ``asr_backend`` setting) and that backend's model setting. The one place both
        defaults are chosen (the worker and ``sourcebook transcribe``); raises ValueError for
        a backend that is not one of :data:`pipelines.models.ASR_BACKENDS`."""
        chosen = backend or self.asr_backend
        if chosen not in ASR_BACKENDS:
            raise ValueError(f"unknown ASR backend {chosen[:100]!r}; use one of "
                             f"{', '.join(ASR_BACKENDS)}")
        return chosen, (self.whisper_model if chosen == "faster-whisper"
                        else self.openai_whisper_model)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_duration_seconds(self) -> float:
        return self.max_duration_hours * 3600.0

    @property
    def max_json_bytes(self) -> int:
        return self.max_json_kb * 1024

    @property
    def max_import_bytes(self) -> int:
        return self.max_import_mb * 1024 * 1024

    @property
    def token_ttl(self) -> timedelta | None:
        return timedelta(days=self.token_ttl_days) if self.token_ttl_days else None

    def token_key(self) -> bytes:
        """The HMAC key for API tokens: the setting, or a per-installation secret file.

        The file is created on first use with mode 0600 (never readable by anyone else,
        not even while it is written), so no secret ever sits in the repo.
        """
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            private_dir(self.data_dir)
            tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = open_private(tmp, exclusive=True)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
            try:
                # link() fails if another process won the race; then its key is the key.
                path.hardlink_to(tmp)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        else:
            tighten(path)
        return path.read_text().strip().encode()

    def ensure_dirs(self) -> None:
        """Create the storage directories (idempotent): owner-only, see service.filemodes.

        Directories an older version created with the umask's modes are tightened too.
        """
        for d in (self.data_dir, self.recordings_dir, self.transcripts_dir):
            private_dir(d)
        self.models_dir.mkdir(parents=True, exist_ok=True)  # public weights, shareable


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

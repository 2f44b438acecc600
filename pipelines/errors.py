"""Errors raised by the pipeline stages.

::

    PipelineError                 anything a stage can raise on purpose
    ├── AudioError                the media cannot be used: not decodable, no audio stream, silent
    │   └── DurationLimitError    longer than the caller's maximum duration
    ├── ModelError                a model cannot be loaded or run
    │   └── ModelNotFoundError    the weights are not installed where settings point
    └── CancelledError            the caller asked to stop at the next progress point

``AudioError`` is permanent (retrying the same bytes cannot help). ``ModelError``
may be transient (memory pressure) and is retried by the job queue.
"""


class PipelineError(Exception):
    """Base class of every error a pipeline stage raises on purpose."""


class AudioError(PipelineError):
    """The media cannot be decoded as audio, has no audio stream, or is silent."""


class DurationLimitError(AudioError):
    """The media is longer than the maximum duration its caller set.

    ``declared`` says whether the header said so (nothing was decoded) or decoding found
    it (the header understated the length, or stated none).
    """

    def __init__(self, name: str, limit: float, duration: float, *, declared: bool) -> None:
        self.name = name
        self.limit = limit
        self.duration = duration
        self.declared = declared
        found = (f"says it is {_hms(duration)} long" if declared
                 else f"decodes to more than {_hms(limit)}")
        super().__init__(
            f"{name} {found}, over the maximum of {_hms(limit)} per recording. Split it into "
            f"parts shorter than that and upload each, or have the maximum raised."
        )


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ModelError(PipelineError):
    """A model could not be loaded or failed while running."""


class ModelNotFoundError(ModelError):
    """Model weights are missing; the message names the command that installs them."""


class CancelledError(PipelineError):
    """The run was cancelled by its caller at a progress point."""

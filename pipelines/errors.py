"""Errors raised by the pipeline stages.

::

    PipelineError                 anything a stage can raise on purpose
    ├── AudioError                the media cannot be used: not decodable, no audio stream, silent
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


class ModelError(PipelineError):
    """A model could not be loaded or failed while running."""


class ModelNotFoundError(ModelError):
    """Model weights are missing; the message names the command that installs them."""


class CancelledError(PipelineError):
    """The run was cancelled by its caller at a progress point."""

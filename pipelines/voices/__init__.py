"""Voice recognition: speaker embeddings in, nearest consenting voiceprints out.

Pure numpy, no state. The service decides who may have a voiceprint (consent) and stores
it; this package only compares vectors, keeps a voiceprint bounded, measures thresholds and
(re)computes a label's embedding when a recording has none.

Embeddings are CAM++ vectors (192-dim) as diarization produces them: pyannote's per-label
centroid, which is the plain mean of the label's raw (not unit-length) 10 s chunk
embeddings. Only their direction matters here: every comparison is the cosine, computed
after L2-normalising each vector.

Voiceprint
    A person's voiceprint is a bounded list of samples ``(source, embedding)``, one per
    named label (``source`` identifies it, e.g. ``"recording 12 SPEAKER_00"``), not one
    average: a phone call and a studio interview of one person sit apart, and averaging them
    gives a vector close to neither. :func:`enrol` adds one, replacing any sample of the same
    source; beyond :data:`VOICEPRINT_LIMIT` it drops the older member of the most similar
    pair, so the samples that stay are the most different ones (diversity), and of two near
    copies the newer stays.

Matching (:func:`match`)
    A person's score for a label is the highest cosine over that person's samples. A label
    gets a suggestion only when the score is at least ``threshold`` and ahead of every other
    candidate by ``margin``; the recording's participants are tried first. Two labels of one
    recording never get the same person unless both are over ``clear``. All labels against
    all people is one matrix product.

Thresholds
    :data:`THRESHOLD`, :data:`MARGIN` and :data:`AUTO_APPLY_THRESHOLD` come from measurement
    (``bench/voices.py``, bench/RESULTS.md "Voices"). :func:`calibrate` recomputes them from
    any labelled embeddings, e.g. a team's own named recordings.

Recomputing an embedding (:func:`embed_labels`)
    For recordings stored before labels had embeddings. It runs the diarizer's own embedding
    model over the diarizer's 10 s chunks of the label's speech and averages the raw chunk
    embeddings, as pyannote's centroid does, so the result is comparable with
    ``Diarization.embeddings``. With ``SourcebookDiarization`` the chunks pool CAM++
    features computed over the whole recording in 30 s blocks, exactly as its diarization
    computes them (embedding each chunk on its own gives other vectors: cosine 0.96 with the
    diarizer's centroid on pyannote's sample); the masks come from the label's final turns,
    so the result is close, not equal: cosine 0.995-0.996 with the diarizer's centroid of
    the same label on half of pyannote's sample (tests/pipelines/test_voices.py).

Modules: :mod:`~pipelines.voices.vectors` (unit vectors), :mod:`~pipelines.voices.enrolment`
(bounded voiceprints), :mod:`~pipelines.voices.matching` (labels to people),
:mod:`~pipelines.voices.calibration` (thresholds from labelled embeddings) and
:mod:`~pipelines.voices.recompute` (a label's embedding from its audio).
"""

from pipelines.voices.calibration import (
    Calibration,
    Distribution,
    Identification,
    LabelledEmbedding,
    OperatingPoint,
    calibrate,
    equal_error_rate,
    identify,
    operating_point,
    pair_scores,
)
from pipelines.voices.enrolment import VOICEPRINT_LIMIT, enrol, voiceprint_matrix
from pipelines.voices.matching import (
    AUTO_APPLY_THRESHOLD,
    MARGIN,
    THRESHOLD,
    ScoreTable,
    Scoring,
    Suggestion,
    Voiceprints,
    match,
    score_table,
)
from pipelines.voices.recompute import (
    Embedder,
    RecordingEmbedder,
    chunk_starts,
    embed_labels,
    embedder_from_diarizer,
)
from pipelines.voices.vectors import unit

__all__ = [
    "AUTO_APPLY_THRESHOLD",
    "MARGIN",
    "THRESHOLD",
    "VOICEPRINT_LIMIT",
    "Calibration",
    "Distribution",
    "Embedder",
    "Identification",
    "LabelledEmbedding",
    "OperatingPoint",
    "RecordingEmbedder",
    "ScoreTable",
    "Scoring",
    "Suggestion",
    "Voiceprints",
    "calibrate",
    "chunk_starts",
    "embed_labels",
    "embedder_from_diarizer",
    "enrol",
    "equal_error_rate",
    "identify",
    "match",
    "operating_point",
    "pair_scores",
    "score_table",
    "unit",
    "voiceprint_matrix",
]

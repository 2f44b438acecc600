"""SQLModel tables and API schemas, one module per area.

Importing this package registers every table on ``SQLModel.metadata``.
"""

from service.models.audit import AuditEvent
from service.models.chapters import Chapter
from service.models.consent import ConsentAgreement, QuoteApproval, Restriction
from service.models.glossary import GlossaryTerm
from service.models.jobs import Job
from service.models.people import Person
from service.models.quotes import ChapterQuote, Quote
from service.models.recordings import Participant, Recording, Speaker
from service.models.transcripts import Revision, Segment, Transcript
from service.models.users import ApiToken, User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Chapter",
    "ChapterQuote",
    "ConsentAgreement",
    "GlossaryTerm",
    "Job",
    "Participant",
    "Person",
    "Quote",
    "QuoteApproval",
    "Recording",
    "Restriction",
    "Revision",
    "Segment",
    "Speaker",
    "Transcript",
    "User",
]

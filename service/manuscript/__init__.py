"""The book's text: its outline (chapters from Markdown), the quotations in a draft,
and checking them against the transcripts."""

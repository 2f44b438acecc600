"""Clearance: may each quote used in the book be printed on a date, and how attributed.

``rules`` decides from frozen facts (pure); ``facts`` reads those facts from the
database and assesses every quote use; ``render`` writes the result as CSV or Markdown.
"""

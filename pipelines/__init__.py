"""Audio processing stages for Sourcebook.

Every stage is a loader plus a call, exchanging the frozen dataclasses of
``pipelines.types``. Nothing here imports ``service``; heavy libraries (torch,
whisper, pyannote) are imported only inside the functions that need them, so that
importing ``pipelines`` stays cheap for the API process.
"""

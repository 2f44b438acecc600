"""The Sourcebook service: FastAPI app, storage, queue and everything that holds state."""

"""The FastAPI service, storage, dispatch."""

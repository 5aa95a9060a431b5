"""supernas kernel: frozen records, states, objectives and errors shared by every layer.

Nothing here imports the rest of the project, torch, fastapi, sqlalchemy or ray.
"""

__version__ = "0.1.0"

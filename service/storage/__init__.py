"""Storage: the only code that touches the database (ORM rows, migrations, the ``Storage`` repository).

Everything that leaves this package is a frozen record from :mod:`supernas.records`.
"""

from service.storage.repository import Storage

__all__ = ["Storage"]

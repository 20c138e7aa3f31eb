"""``btic serve``: a read-only web viewer over the archive, for auditors.

Imported only by ``btic serve`` (the ``serve`` extra: Starlette, uvicorn,
argon2-cffi). Every page and API answer needs a login; nothing in it writes to
the archive or the state database.
"""

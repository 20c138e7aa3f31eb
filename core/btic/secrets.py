"""Secret values in the configuration: ``env:NAME``, ``file:PATH`` or literal.

A :class:`Secret` keeps its reference and reads the variable or file when the
value is first used, so a command that needs no secret (``btic status``,
``btic verify``) runs where the secret is not set; a command that needs them
asks for them all at start (:meth:`Secret.problem`) and reports every one that
is missing with its config path. It never shows its value: ``str()``,
``repr()`` and pydantic serialisation all give the reference
(``env:BTIC_SECRET``) or a mask, so a secret cannot reach a summary, a log line
or a traceback by accident.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

from btic.errors import ConfigError, ConfigProblem

MASK = "********"
ENV_PREFIX = "env:"
FILE_PREFIX = "file:"


class Secret:
    """A secret and the reference it came from, read when first used.

    Plugins declare secret options with this type (``password: Secret``) and
    call :meth:`get_secret_value` at the moment they need the value.
    """

    __slots__ = ("_base_dir", "_environ", "_value", "reference", "where")

    def __init__(
        self,
        value: str | None,
        reference: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
    ):
        if value is None and reference is None:
            raise ValueError("a secret needs its value or a reference")
        self._value = value
        #: ``env:NAME`` or ``file:PATH``; None for a secret written literally.
        self.reference = reference
        self._environ = environ
        self._base_dir = base_dir
        #: where in the configuration it stands (``sites.support.client_secret``), once known
        self.where = ""

    def get_secret_value(self) -> str:
        """The secret, read from its variable or file on first use.

        :raises ConfigError: the variable is not set, the file cannot be read, or
            either is empty; the message names the config path and the reference.
        """
        if self._value is None:
            assert self.reference is not None
            try:
                self._value = _read(self.reference, self._environ, self._base_dir)
            except ValueError as exc:
                raise ConfigError([ConfigProblem(self.where, str(exc))]) from None
        return self._value

    def problem(self) -> str | None:
        """Why the secret cannot be read now; None when it can."""
        try:
            self.get_secret_value()
        except ConfigError as exc:
            return exc.problems[0].message
        return None

    @property
    def written_in_file(self) -> bool:
        """True when the secret itself (not a reference) is in the config file."""
        return self.reference is None

    @property
    def display(self) -> str:
        """What may be shown of this secret: its reference, or a mask."""
        return self.reference or MASK

    def __repr__(self) -> str:
        return f"Secret({self.display!r})"

    def __str__(self) -> str:
        return self.display

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return False
        if self.reference is None or other.reference is None:
            return (self.reference, self._value) == (other.reference, other._value)
        return (self.reference, self._base_dir) == (other.reference, other._base_dir)

    def __hash__(self) -> int:
        return hash(self.reference or self._value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            functools.partial(_validate_secret, cls),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda secret: secret.display
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {
            "type": "string",
            "description": "a literal secret, env:NAME or file:PATH",
        }


def resolve_secret(
    text: str, *, environ: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> Secret:
    """Resolve one secret reference now.

    :param text: ``env:NAME``, ``file:PATH`` (relative to ``base_dir``) or the
        secret itself.
    :param environ: where ``env:`` looks; the process environment by default.
    :param base_dir: the configuration file's directory.
    :raises ValueError: with a message that names the variable or file but
        never the secret.
    """
    secret = deferred_secret(text, environ=environ, base_dir=base_dir)
    if secret.reference is not None:
        secret._value = _read(secret.reference, environ, base_dir)
    return secret


def deferred_secret(
    text: str, *, environ: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> Secret:
    """A secret whose reference is checked for form now and read when first used.

    :raises ValueError: for a reference without a name or path, or an empty secret.
    """
    if text.startswith(ENV_PREFIX):
        if not text[len(ENV_PREFIX) :]:
            raise ValueError("env: needs a variable name, as in env:BTIC_SECRET")
        return Secret(None, text, environ=environ)
    if text.startswith(FILE_PREFIX):
        if not text[len(FILE_PREFIX) :]:
            raise ValueError("file: needs a path, as in file:/run/secrets/btic")
        return Secret(None, text, base_dir=base_dir)
    if not text:
        raise ValueError("is empty; give the secret, env:NAME or file:PATH")
    return Secret(text, None)


def _read(reference: str, environ: Mapping[str, str] | None, base_dir: Path | None) -> str:
    """The value an ``env:`` or ``file:`` reference points at."""
    if reference.startswith(ENV_PREFIX):
        name = reference[len(ENV_PREFIX) :]
        value = (os.environ if environ is None else environ).get(name)
        if value is None:
            raise ValueError(f"environment variable {name} is not set (referenced as {reference})")
        if not value:
            raise ValueError(f"environment variable {name} is empty (referenced as {reference})")
        return value
    path = Path(reference[len(FILE_PREFIX) :]).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"secret file {path} is empty")
    return value


#: ``PWD=...`` or ``Password=...`` in an ODBC connection string (braced or not).
_ODBC_PASSWORD = re.compile(r"((?:^|;)\s*(?:PWD|Password)\s*=\s*)(\{[^}]*\}|[^;]*)", re.IGNORECASE)


class DatabaseUrl(Secret):
    """A database URL, which may carry a password.

    Shown as its reference, or, written literally, as the URL with the
    password masked (``postgresql://btic:***@db/btic``) so a summary still
    says which database is meant.
    """

    __slots__ = ()

    @property
    def written_in_file(self) -> bool:
        return self.reference is None and self._password() is not None

    def _password(self) -> str | None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.get_secret_value())
        except ArgumentError:
            return self.get_secret_value()
        if url.password is not None:
            return str(url.password)
        # An ODBC connection string passed whole (odbc_connect=...;PWD=...;).
        found = _ODBC_PASSWORD.search(str(url.query.get("odbc_connect", "")))
        return found.group(2) if found else None

    @property
    def display(self) -> str:
        if self.reference is not None:
            return self.reference
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.get_secret_value())
        except ArgumentError:
            return MASK
        odbc = url.query.get("odbc_connect")
        if isinstance(odbc, str):
            # Shown as written (unquoted), its password masked.
            rest = url.difference_update_query(["odbc_connect"])
            masked = _ODBC_PASSWORD.sub(rf"\g<1>{MASK}", odbc)
            joiner = "&" if rest.query else "?"
            return f"{rest.render_as_string(hide_password=True)}{joiner}odbc_connect={masked}"
        return url.render_as_string(hide_password=True)

    def __str__(self) -> str:
        return self.display


def _validate_secret(cls: type[Secret], value: Any, info: core_schema.ValidationInfo) -> Secret:
    if isinstance(value, cls):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string: the secret, env:NAME or file:PATH")
    context = info.context or {}
    environ, base_dir = context.get("environ"), context.get("base_dir")
    secret = deferred_secret(value, environ=environ, base_dir=base_dir)
    if cls is Secret:
        return secret
    return cls(secret._value, secret.reference, environ=environ, base_dir=base_dir)

"""The rules a destination's section sets for the core to apply, whatever its
plugin: ``retention = {...}`` (how long items are kept) and ``encrypt = {...}``
(which items are sealed to age recipients before the plugin sees them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from btic import encryption
from btic.config.sections import format_duration, parse_duration
from btic.errors import ConfigProblem
from btic.types import DataType

#: The prefix of a recipients file in ``encrypt.recipients`` (one ``age1...`` a line,
#: as ``age -R`` reads it).
FILE_PREFIX = "file:"


@dataclass(frozen=True)
class Sealing:
    """``encrypt = { recipients = [...], data_types = [...] }``: the items of these data
    types are encrypted to these age recipients before the destination's plugin sees
    them; only the holders of the matching identities can read them back.

    :ivar recipients: X25519 public keys (``age1...``), validated at load.
    :ivar data_types: the data types sealed (all of them unless the rule names some).
    """

    recipients: tuple[str, ...]
    data_types: frozenset[DataType]

    def seals(self, data_type: DataType) -> bool:
        return data_type in self.data_types


def retention_rules(
    where: str, rules: object, floor: timedelta, problems: list[ConfigProblem]
) -> dict[DataType, timedelta]:
    """A destination's ``retention = { session = "7y", ... }``: a period per data type,
    none shorter than ``[retention] floor``."""
    if not isinstance(rules, Mapping):
        problems.append(
            ConfigProblem(f"{where}.retention", 'must be a table: { session = "7y", ... }')
        )
        return {}
    parsed: dict[DataType, timedelta] = {}
    for kind, period in rules.items():
        path = f"{where}.retention.{kind}"
        data_type = _data_type(path, kind, problems)
        if data_type is None:
            continue
        try:
            parsed[data_type] = parse_duration(period)
        except ValueError as exc:
            problems.append(ConfigProblem(path, str(exc)))
            continue
        if parsed[data_type] < floor:
            problems.append(
                ConfigProblem(
                    path,
                    f"{period} is shorter than the retention floor {format_duration(floor)} "
                    "([retention] floor): a mistake would delete the archive; lower the "
                    "floor first if this is meant",
                )
            )
    return parsed


def sealing_rule(
    where: str, rule: object, base_dir: Path, problems: list[ConfigProblem]
) -> Sealing | None:
    """A destination's ``encrypt = { recipients = ["age1...", "file:auditors.txt"],
    data_types = ["session", "recording"] }``; None when it has none."""
    if rule is None:
        return None
    where = f"{where}.encrypt"
    if not isinstance(rule, Mapping):
        problems.append(ConfigProblem(where, 'must be a table: { recipients = ["age1..."] }'))
        return None
    unknown = sorted(set(rule) - {"recipients", "data_types"})
    for name in unknown:
        problems.append(
            ConfigProblem(f"{where}.{name}", "is not a setting; one of: recipients, data_types")
        )
    entries = rule.get("recipients")
    if not isinstance(entries, list) or not entries:
        problems.append(
            ConfigProblem(
                f"{where}.recipients",
                'is required: a list of age recipients ("age1...", as age-keygen -y prints '
                'them) or recipients files ("file:PATH")',
            )
        )
        return None
    recipients: list[str] = []
    for index, entry in enumerate(entries):
        path = f"{where}.recipients[{index}]"
        if not isinstance(entry, str):
            problems.append(ConfigProblem(path, "must be a string"))
            continue
        for text, origin in _recipient_texts(path, entry, base_dir, problems):
            try:
                encryption.parse_recipient(text)
            except encryption.EncryptionError as exc:
                problems.append(ConfigProblem(origin, str(exc)))
                if not encryption.available():
                    return None  # one line says to install the extra
                continue
            recipients.append(text.strip())
    kinds = rule.get("data_types")
    data_types = set(DataType)
    if kinds is not None:
        if not isinstance(kinds, list) or not kinds:
            problems.append(
                ConfigProblem(f"{where}.data_types", 'must be a list: ["session", "recording"]')
            )
        else:
            named = [
                _data_type(f"{where}.data_types[{index}]", kind, problems)
                for index, kind in enumerate(kinds)
            ]
            data_types = {data_type for data_type in named if data_type is not None}
    if not recipients:
        return None
    return Sealing(tuple(dict.fromkeys(recipients)), frozenset(data_types))


def _recipient_texts(
    path: str, entry: str, base_dir: Path, problems: list[ConfigProblem]
) -> list[tuple[str, str]]:
    """The recipients an entry names, each with the place a problem with it is reported."""
    if not entry.startswith(FILE_PREFIX):
        return [(entry, path)]
    file = Path(entry[len(FILE_PREFIX) :]).expanduser()
    if not file.is_absolute():
        file = base_dir / file
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ConfigProblem(path, f"cannot read the recipients file {file}: {exc}"))
        return []
    texts = [
        (line.strip(), f"{path} ({file}, line {number})")
        for number, line in enumerate(lines, 1)
        if line.strip() and not line.strip().startswith("#")
    ]
    if not texts:
        problems.append(ConfigProblem(path, f"the recipients file {file} names no recipient"))
    return texts


def _data_type(path: str, kind: object, problems: list[ConfigProblem]) -> DataType | None:
    try:
        return DataType(kind)
    except ValueError:
        names = ", ".join(dt.value for dt in DataType)
        problems.append(ConfigProblem(path, f"is not a data type; one of: {names}"))
        return None

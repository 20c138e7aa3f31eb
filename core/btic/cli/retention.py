"""``btic retention`` (apply the rules, or list what they would remove) and ``btic hold``
(legal holds: sessions no rule may delete)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from btic.cli.base import Runtime, config_option, echo_json, promise_json

if TYPE_CHECKING:
    from btic.holds import PassedOn


@click.command("retention")
@config_option
@click.option("--dest", "destinations", multiple=True, help="Only this destination (repeatable).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def retention_command(
    runtime: Runtime,
    config_path: Path | None,
    destinations: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Apply the destinations' retention rules now (each run applies them too).

    An item older than its data type's period there is deleted and recorded as
    removed; a session under a legal hold (btic hold) is kept, whatever its age.
    """
    from btic.errors import WorkFailed
    from btic.retention import Retention
    from btic.state import opened_state
    from btic.transfer.summary import Summary
    from btic.types import default_logger

    promise_json(as_json)
    config = runtime.load_config(config_path, secrets=not dry_run)
    config.require(destinations=destinations)
    names = list(destinations) or list(config.destinations)
    with opened_state(config.state_url) as state:
        retention = Retention(
            config, runtime.plugins, state, run_id="retention", log=default_logger()
        )
        chosen = retention.destinations_with_rules(names)
        if not dry_run:
            for name in chosen:
                config.configure_destination(runtime.plugins, name)
        summary = Summary()
        removals = retention.apply(chosen, summary, dry_run=dry_run)
    if as_json:
        echo_json(
            {
                "ok": not summary.problems,
                "dry_run": dry_run,
                "removed": [r.as_json() for r in removals],
                "problems": summary.problems,
            }
        )
    else:
        verb = "would remove" if dry_run else "removed"
        for removal in removals:
            click.echo(
                f"{verb}: {removal.destination} {removal.data_type.value} {removal.item_key} "
                f"({removal.item_time:%Y-%m-%d}; {removal.rule}): {removal.location}"
            )
        if not chosen:
            click.echo("no destination has retention rules")
        else:
            click.echo(f"{len(removals)} item(s) {verb}")
        for problem in summary.problems:
            click.echo(f"error: {problem}", err=True)
    if summary.problems:
        raise WorkFailed("some items could not be removed")


@click.group("hold")
def hold_group() -> None:
    """Legal holds: sessions that no retention rule may delete."""


@hold_group.command("add")
@config_option
@click.option("--site", required=True, help="The site the sessions belong to.")
@click.option("--lsid", "lsids", multiple=True, help="A session to hold (repeatable).")
@click.option(
    "--person", "people", multiple=True, help="Every archived session of this person (as find)."
)
@click.option("--since", help="... that ended at or after (as find).")
@click.option("--until", help="... that started before (as find).")
@click.option("--reason", required=True, help="Why (a case, a request): kept with the hold.")
@click.option("--by", "held_by", help="Who sets it [default: this user].")
@click.pass_obj
def hold_add_command(
    runtime: Runtime,
    config_path: Path | None,
    site: str,
    lsids: tuple[str, ...],
    people: tuple[str, ...],
    since: str | None,
    until: str | None,
    reason: str,
    held_by: str | None,
) -> None:
    """Hold sessions: by lsid, or every archived session a search finds."""
    from btic.cli.find import moment
    from btic.holds import pass_on
    from btic.state import opened_state
    from btic.state.session_index import SessionQuery, TermFilter
    from btic.summaries import TermKind

    if not lsids and not people and since is None and until is None:
        raise click.UsageError("say which sessions: --lsid, or --person / --since / --until")
    if not reason.strip():
        raise click.BadParameter("must say why", param_hint="--reason")
    config = runtime.load_config(config_path, secrets=False)
    with opened_state(config.state_url) as state:
        chosen = list(lsids)
        if people or since is not None or until is not None:
            query = SessionQuery(
                site=site,
                since=moment(since, "--since"),
                until=moment(until, "--until"),
                terms=tuple(TermFilter.parse(TermKind.PERSON, p) for p in people),
                limit=1_000_000,
            )
            chosen += [s.lsid for s in state.find_sessions(query)]
        added = state.add_holds(
            site, chosen, reason=reason.strip(), held_by=held_by or getpass.getuser()
        )
        click.echo(f"{added} session(s) of {site} held ({len(set(chosen)) - added} held already)")
        _report(pass_on(config, runtime.plugins, state, site, chosen, held=True), held=True)


@hold_group.command("remove")
@config_option
@click.option("--site", required=True)
@click.option("--lsid", "lsids", multiple=True, required=True, help="A session (repeatable).")
@click.pass_obj
def hold_remove_command(
    runtime: Runtime, config_path: Path | None, site: str, lsids: tuple[str, ...]
) -> None:
    """Lift the holds of these sessions: retention applies to them again."""
    from btic.holds import pass_on
    from btic.state import opened_state

    config = runtime.load_config(config_path, secrets=False)
    with opened_state(config.state_url) as state:
        removed = state.remove_holds(site, lsids)
        click.echo(f"{removed} hold(s) lifted")
        _report(pass_on(config, runtime.plugins, state, site, lsids, held=False), held=False)


def _report(results: list[PassedOn], *, held: bool) -> None:
    """One line per destination; each item it could not hold (or release) on its own
    line, and exit 1 then: btic's own hold stands either way."""
    from btic.errors import WorkFailed

    failed = False
    for result in results:
        done = "under the destination's legal hold" if held else "released by the destination"
        parts = [f"{result.done} item(s) {done}"] if result.done else []
        if result.kept_by_btic_only:
            parts.append(
                f"{result.kept_by_btic_only} item(s) where it keeps no holds of its own "
                "(btic's hold keeps them from retention)"
            )
        if result.failures:
            parts.append(f"{len(result.failures)} item(s) it could not take the change for")
        click.echo(f"{result.destination}: {'; '.join(parts)}")
        for failure in result.failures:
            failed = True
            click.echo(f"  {failure}", err=True)
    if failed:
        raise WorkFailed()


@hold_group.command("list")
@config_option
@click.option("--site", help="Only this site's holds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def hold_list_command(
    runtime: Runtime, config_path: Path | None, site: str | None, as_json: bool
) -> None:
    """Every hold: site, lsid, reason, who set it and when."""
    from btic.state import opened_state

    promise_json(as_json)
    config = runtime.load_config(config_path, secrets=False)
    with opened_state(config.state_url) as state:
        held = state.holds(site)
    if as_json:
        echo_json({"ok": True, "holds": [hold.as_json() for hold in held]})
        return
    if not held:
        click.echo("no session is held")
    for hold in held:
        click.echo(
            f"{hold.site} {hold.lsid}: {hold.reason} (by {hold.held_by}, "
            f"{hold.held_at:%Y-%m-%d %H:%M}Z)"
        )

"""The celery executor: `btic run --executor celery` enqueues, `btic worker` processes
run the tasks, against a real redis-server, a real PostgreSQL state database and
simulated appliances over real sockets. What must hold is what Celery's
at-least-once delivery does not give by itself: every item exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy
from conftest import BTIC, new_postgres_database
from test_systemd import FakeSystemd, notify_env
from transfer_helpers import check_archive, expected_files, wait_for

from btic import logs
from btic.config import load_config
from btic.plugins import PluginManager
from btic.scheduler import Scheduler
from btic.sim import SimulatedAppliance
from btic.state import StateStore
from btic.testing.servers import free_port

DATA = ("session", "recording")


def celery_config(
    tmp_path: Path,
    sims: list[SimulatedAppliance],
    state: str,
    broker: str,
    *,
    queue: str,
    executor: str = "",
) -> Path:
    sites = "".join(
        sim.site_toml(f"s{i}") + 'first_run_since = "all"\n' for i, sim in enumerate(sims)
    )
    data = ", ".join(f'"{d}"' for d in DATA)
    transfers = "".join(
        f'[[schedules.all.transfers]]\nsite = "s{i}"\ndestinations = ["archive"]\ndata = [{data}]\n'
        for i in range(len(sims))
    )
    path = tmp_path / "btic.toml"
    path.write_text(
        f'[state]\nurl = "{state}"\n\n'
        f'[executor]\nkind = "celery"\nbroker_url = "{broker}"\nqueue = "{queue}"\n'
        f'visibility_timeout = "15s"\nbusy_retry = "2s"\n{executor}\n'
        f"{sites}\n"
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n\n'
        f'[schedules.all]\nevery = "1d"\nat = "00:00"\n{transfers}'
    )
    path.chmod(0o600)
    return path


def start_worker(config: Path, log: Path, name: str, concurrency: int = 2) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [BTIC, "worker", "--config", str(config), "-c", str(concurrency), "-n", f"{name}@%h"],
            stdout=out,
            stderr=out,
            env=env,
        )


def enqueue(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    return subprocess.run(
        [BTIC, "run", "--once", "--executor", "celery", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def task_rows(state: str) -> list[sqlalchemy.Row]:
    engine = sqlalchemy.create_engine(state)
    try:
        if not sqlalchemy.inspect(engine).has_table("btic_tasks"):
            return []  # nothing has opened the state database yet
        with engine.connect() as connection:
            return list(
                connection.execute(
                    sqlalchemy.text(
                        "select id, site, status, worker, attempts, enqueued_at from btic_tasks"
                    )
                )
            )
    finally:
        engine.dispose()


def all_finished(state: str, count: int):
    def check() -> bool:
        rows = task_rows(state)
        return len(rows) >= count and all(row.status == "ok" for row in rows)

    return check


def stop_all(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def expected(sims: list[SimulatedAppliance]) -> dict[str, str]:
    files: dict[str, str] = {}
    for sim in sims:
        files.update(expected_files(sim, data=list(DATA)))
    return files


def ledger_counts(state: str) -> list[tuple[str, str, int]]:
    engine = sqlalchemy.create_engine(state)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    sqlalchemy.text(
                        "select site, item_key, count(*) from btic_deliveries "
                        "where status = 'delivered' group by site, data_type, item_key"
                    )
                )
            )
    finally:
        engine.dispose()


@pytest.fixture
def broker(redis_server):
    redis_server.flush()
    return redis_server.url


def test_twenty_appliances_three_workers_every_item_once(tmp_path, postgres_url, broker):
    state = new_postgres_database(postgres_url)
    sims = [
        SimulatedAppliance(
            "rs", tls=False, sessions=3, seed=100 + i, recording_size=20_000, live_sessions=0
        )
        for i in range(20)
    ]
    for sim in sims:
        sim.start()
    config = celery_config(tmp_path, sims, state, broker, queue="twenty")
    workers = [start_worker(config, tmp_path / f"w{n}.log", f"w{n}") for n in range(3)]
    try:
        result = enqueue(config)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "20 task(s) enqueued" in result.stdout + result.stderr
        wait_for(all_finished(state, 20), 240, "20 tasks", workers)
    finally:
        stop_all(workers)
        for sim in sims:
            sim.stop()
    check_archive(tmp_path / "archive", expected(sims))
    counts = ledger_counts(state)
    assert counts and all(count == 1 for _, _, count in counts)
    assert len(counts) == len(expected(sims))
    rows = task_rows(state)
    assert len({row.worker for row in rows}) >= 2, "the work was shared"
    for sim in sims:
        # one token per site per worker process at most, however many tasks it ran
        assert sim.stats["token"] <= 3


def test_a_worker_killed_mid_task_its_task_is_redelivered_and_finished(
    tmp_path, postgres_url, broker
):
    state = new_postgres_database(postgres_url)
    with SimulatedAppliance(
        "rs",
        tls=False,
        sessions=10,
        seed=7,
        recording_size=60_000,
        live_sessions=0,
        faults="latency=0.15",
    ) as sim:
        config = celery_config(tmp_path, [sim], state, broker, queue="killed")
        workers = [start_worker(config, tmp_path / f"w{n}.log", f"w{n}", 1) for n in range(2)]
        try:
            assert enqueue(config).returncode == 0
            archive = tmp_path / "archive"
            wait_for(
                lambda: (
                    any(r.status == "running" for r in task_rows(state))
                    and len(list(archive.glob("*.xml"))) >= 2
                ),
                90,
                "the task to be under way",
                workers,
            )
            (row,) = task_rows(state)
            pid = int(row.worker.split(":")[1])
            (victim,) = [w for w in workers if w.pid == pid]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            survivor = [w for w in workers if w is not victim]
            wait_for(all_finished(state, 1), 120, "the redelivered task", survivor)
            (row,) = task_rows(state)
            assert int(row.worker.split(":")[1]) != pid, "another worker finished it"
            assert row.attempts >= 2
        finally:
            stop_all(workers)
        check_archive(archive, expected([sim]))  # everything once, nothing partial
    assert all(count == 1 for _, _, count in ledger_counts(state))


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a worker on another host name needs unshare --uts, as root",
)
def test_a_worker_lost_with_its_machine_gives_its_site_back_within_a_minute(
    tmp_path, postgres_url, broker
):
    """A worker under another host name (its own UTS namespace: to the others, another
    machine, whose process they cannot look up) is killed mid-task: its task shows
    as lost once its heartbeat stops, and every item arrives once within 2 minutes."""
    state = new_postgres_database(postgres_url)
    with SimulatedAppliance(
        "rs",
        tls=False,
        sessions=10,
        seed=9,
        recording_size=60_000,
        live_sessions=0,
        faults="latency=0.15",
    ) as sim:
        config = celery_config(tmp_path, [sim], state, broker, queue="lost")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
        elsewhere = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', "elsewhere"]
        with (tmp_path / "victim.log").open("ab") as out:
            victim = subprocess.Popen(
                [*elsewhere, BTIC, "worker", "--config", str(config), "-c", "1", "-n", "victim@%h"],
                stdout=out,
                stderr=out,
                env=env,
            )
        workers = [victim]
        try:
            assert enqueue(config).returncode == 0
            archive = tmp_path / "archive"
            wait_for(
                lambda: (
                    any(r.status == "running" for r in task_rows(state))
                    and len(list(archive.glob("*.xml"))) >= 2
                ),
                90,
                "the task to be under way",
                workers,
            )
            assert task_rows(state)[0].worker.startswith("elsewhere:")
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)

            def lost() -> bool:
                status = run_btic_command("status", "--json", "--config", str(config))
                return [t["lost"] for t in json.loads(status.stdout)["tasks"]] == [1]

            wait_for(lost, 90, "the task to show as lost")
            text = run_btic_command("status", "--config", str(config)).stdout
            assert "1 lost (their worker stopped answering" in text
            workers.append(start_worker(config, tmp_path / "survivor.log", "survivor", 1))
            wait_for(all_finished(state, 1), 120, "the task, finished by the survivor", workers[1:])
        finally:
            stop_all(workers)
        check_archive(archive, expected([sim]))  # everything once, nothing partial
    assert all(count == 1 for _, _, count in ledger_counts(state))


def test_the_same_task_enqueued_twice_at_once_delivers_once(tmp_path, postgres_url, broker):
    from btic.executor.dispatch import Dispatcher

    state = new_postgres_database(postgres_url)
    with SimulatedAppliance(
        "rs",
        tls=False,
        sessions=8,
        seed=9,
        recording_size=40_000,
        live_sessions=0,
        faults="latency=0.05",
    ) as sim:
        config_path = celery_config(tmp_path, [sim], state, broker, queue="twice")
        plugins = PluginManager.from_environment().discover()
        config = load_config(config_path, plugins)
        store = StateStore(config.state_url)
        dispatcher = Dispatcher(config, store)
        from datetime import datetime, timezone

        slot = datetime(2026, 11, 23, tzinfo=timezone.utc)
        dispatcher.enqueue(config, "all", slot)
        dispatcher.enqueue(config, "all", slot)
        dispatcher.close()
        store.close()
        workers = [start_worker(config_path, tmp_path / f"w{n}.log", f"w{n}", 1) for n in range(2)]
        try:
            wait_for(all_finished(state, 2), 120, "both copies", workers)
        finally:
            stop_all(workers)
        check_archive(tmp_path / "archive", expected([sim]))
    assert all(count == 1 for _, _, count in ledger_counts(state))


def test_redis_restarted_mid_run_the_next_tick_completes_the_work(
    tmp_path, postgres_url, redis_server, broker
):
    state = new_postgres_database(postgres_url)
    sims = [
        SimulatedAppliance(
            "rs",
            tls=False,
            sessions=6,
            seed=20 + i,
            recording_size=30_000,
            live_sessions=0,
            faults="latency=0.1",
        )
        for i in range(3)
    ]
    for sim in sims:
        sim.start()
    config_path = celery_config(
        tmp_path, sims, state, broker, queue="restart", executor="tasks_per_site = 1"
    )
    workers = [start_worker(config_path, tmp_path / "w0.log", "w0", 1)]
    try:
        assert enqueue(config_path).returncode == 0
        wait_for(
            lambda: any(r.status == "running" for r in task_rows(state)), 60, "a task", workers
        )
        redis_server.stop()  # what was queued is lost with it
        time.sleep(2)
        redis_server.start()
        # The next tick: the scheduler enqueues the schedule again.
        first_tick = {row.id for row in task_rows(state)}
        plugins = PluginManager.from_environment().discover()
        config = load_config(config_path, plugins)
        store = StateStore(config.state_url)
        scheduler = Scheduler(
            config, plugins, store, log=logs.for_config(config), executor="celery"
        )
        try:
            outcomes, _ = scheduler.run_due(["all"], anyway=True)
        finally:
            scheduler.close()
            store.close()
        assert [o.status for o in outcomes] == ["queued"]

        def second_tick_done() -> bool:
            second = [r for r in task_rows(state) if r.id not in first_tick]
            return len(second) == 3 and all(r.status == "ok" for r in second)

        wait_for(second_tick_done, 180, "the second tick's tasks", workers)
    finally:
        stop_all(workers)
        for sim in sims:
            sim.stop()
    check_archive(tmp_path / "archive", expected(sims))
    assert all(count == 1 for _, _, count in ledger_counts(state))


def run_btic_command(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    return subprocess.run([BTIC, *args], capture_output=True, text=True, env=env, timeout=120)


def test_a_distributed_executor_refuses_sqlite_and_wants_a_broker(tmp_path):
    with SimulatedAppliance("rs", tls=False, sessions=1, live_sessions=0) as sim:
        config = celery_config(
            tmp_path, [sim], f"sqlite:///{tmp_path / 'state.db'}", "redis://x/0", queue="q"
        )
        config.write_text(config.read_text().replace('broker_url = "redis://x/0"\n', ""))
        result = run_btic_command("check", "--offline", "--config", str(config))
    assert result.returncode == 2
    assert "state.url: must be a server database (postgresql://...)" in result.stderr
    assert "executor.broker_url: is required for a distributed executor" in result.stderr


def test_check_on_a_worker_says_whether_broker_and_state_database_answer(
    tmp_path, postgres_url, broker
):
    state = new_postgres_database(postgres_url)
    with SimulatedAppliance("rs", tls=False, sessions=1, live_sessions=0) as sim:
        config = celery_config(tmp_path, [sim], state, broker, queue="check")
        good = run_btic_command("check", "--config", str(config))
        dead = f"redis://127.0.0.1:{free_port()}/0"
        config.write_text(config.read_text().replace(broker, dead))
        bad = run_btic_command("check", "--config", str(config))
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"ok   executor celery: broker {broker} answers" in good.stdout
    assert "ok   executor celery: state database postgresql" in good.stdout
    assert bad.returncode == 1
    assert f"FAIL executor celery: broker {dead} does not answer" in bad.stdout


def test_status_shows_the_tasks_waiting_per_site(tmp_path, postgres_url, broker):
    state = new_postgres_database(postgres_url)
    with SimulatedAppliance("rs", tls=False, sessions=2, live_sessions=0) as sim:
        config = celery_config(tmp_path, [sim, sim], state, broker, queue="status")
        assert enqueue(config).returncode == 0  # no worker yet: the tasks wait
        waiting = json.loads(run_btic_command("status", "--json", "--config", str(config)).stdout)
        text = run_btic_command("status", "--config", str(config)).stdout
        workers = [start_worker(config, tmp_path / "w.log", "w")]
        try:
            wait_for(all_finished(state, 2), 120, "the tasks", workers)
        finally:
            stop_all(workers)
        done = json.loads(run_btic_command("status", "--json", "--config", str(config)).stdout)
    assert waiting["tasks"] == [
        {"site": "s0", "queued": 1, "running": 0, "retried": 0, "lost": 0},
        {"site": "s1", "queued": 1, "running": 0, "retried": 0, "lost": 0},
    ]
    assert "tasks of s0: 1 queued, 0 running, 0 waiting to retry" in text
    assert waiting["schedules"][0]["last_result"] == "queued"
    assert done["tasks"] == []


def test_the_schedulers_metrics_show_queue_depth_and_task_latency(tmp_path, postgres_url, broker):
    pytest.importorskip("prometheus_client")
    from test_daemon import _metrics, _start

    state = new_postgres_database(postgres_url)
    port = free_port()
    with SimulatedAppliance("rs", tls=False, sessions=2, live_sessions=0) as sim:
        config = celery_config(tmp_path, [sim], state, broker, queue="metrics")
        log = tmp_path / "run.log"
        daemon = _start(config, log, "--executor", "celery", "--metrics-port", str(port))
        try:
            wait_for(lambda: task_rows(state), 60, "the schedule to be enqueued", [daemon])
            # The row is written before the message is sent: wait for the broker to have it.
            wait_for(
                lambda: _ready(port) and _metrics(port).get(("btic_task_queue_depth", ())) == 1,
                30,
                "the task in the broker's queue",
                [daemon],
            )
            queued = _metrics(port)
            workers = [start_worker(config, tmp_path / "w.log", "w")]
            try:
                wait_for(all_finished(state, 1), 120, "the task", workers)
            finally:
                stop_all(workers)
            done = _metrics(port)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    assert queued[("btic_tasks", (("site", "s0"), ("state", "queued")))] == 1
    assert queued[("btic_task_queue_depth", ())] == 1
    assert queued[("btic_task_oldest_queued_seconds", ())] > 0
    assert ("btic_tasks", (("site", "s0"), ("state", "queued"))) not in done
    assert done[("btic_task_queue_depth", ())] == 0
    assert done[("btic_task_wait_seconds", (("stat", "mean"),))] > 0
    assert done[("btic_task_run_seconds", (("stat", "max"),))] > 0
    assert done[("btic_schedule_runs_total", (("schedule", "all"), ("status", "queued")))] == 1


def _ready(port: int) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return False
    return True


def test_tasks_of_one_site_never_exceed_tasks_per_site_across_workers(
    tmp_path, postgres_url, broker
):
    """Two transfers of one appliance (to two destinations) and two idle workers, with
    tasks_per_site = 1: one runs, the other waits in the broker and runs after it."""
    state = new_postgres_database(postgres_url)
    with SimulatedAppliance(
        "rs",
        tls=False,
        sessions=6,
        seed=31,
        recording_size=30_000,
        live_sessions=0,
        faults="latency=0.1",
    ) as sim:
        config = celery_config(
            tmp_path, [sim], state, broker, queue="per-site", executor="tasks_per_site = 1"
        )
        second = tmp_path / "second"
        config.write_text(
            config.read_text()
            + '[[schedules.all.transfers]]\nsite = "s0"\ndestinations = ["second"]\n'
            'data = ["session", "recording"]\n'
            + f'[destinations.second]\nplugin = "filesystem"\ndirectory = "{second}"\n'
        )
        workers = [start_worker(config, tmp_path / f"w{n}.log", f"w{n}", 1) for n in range(2)]
        try:
            assert enqueue(config).returncode == 0
            wait_for(all_finished(state, 2), 120, "both tasks", workers)
        finally:
            stop_all(workers)
        check_archive(tmp_path / "archive", expected([sim]))
        check_archive(second, expected([sim]))
    engine = sqlalchemy.create_engine(state)
    with engine.connect() as connection:
        runs = connection.execute(
            sqlalchemy.text(
                "select started_at, finished_at from btic_runs where kind = 'task' "
                "order by started_at"
            )
        ).all()
    engine.dispose()
    assert len(runs) == 2
    assert runs[0].finished_at <= runs[1].started_at, "the site's two tasks overlapped"


def test_a_task_naming_a_site_the_workers_configuration_lacks_fails_with_the_reason(
    tmp_path, postgres_url, broker
):
    state = new_postgres_database(postgres_url)
    with SimulatedAppliance("rs", tls=False, sessions=1, live_sessions=0) as sim:
        config = celery_config(tmp_path, [sim], state, broker, queue="lacks")
        (tmp_path / "worker").mkdir()
        stale = celery_config(tmp_path / "worker", [sim], state, broker, queue="lacks")
        stale.write_text(stale.read_text().replace('"s0"', '"old"').replace(".s0]", ".old]"))
        assert enqueue(config).returncode == 0
        workers = [start_worker(stale, tmp_path / "w.log", "w")]
        try:
            wait_for(
                lambda: any(r.status == "error" for r in task_rows(state)), 60, "the task", workers
            )
        finally:
            stop_all(workers)
    engine = sqlalchemy.create_engine(state)
    with engine.connect() as connection:
        detail = connection.execute(sqlalchemy.text("select detail from btic_tasks")).scalar_one()
    engine.dispose()
    assert detail == "this worker's configuration lacks it: no site named 's0'; defined: old"


def test_btic_worker_is_ready_when_celery_takes_tasks_and_says_it_drains(
    tmp_path, postgres_url, broker
):
    """`btic worker` under systemd (``Type=notify``): see test_systemd."""
    state = new_postgres_database(postgres_url)
    systemd = FakeSystemd(str(tmp_path / "notify"))
    with SimulatedAppliance("rs", tls=False, sessions=2, seed=62, live_sessions=0) as sim:
        config = celery_config(tmp_path, [sim], state, broker, queue="notify")
        log = tmp_path / "worker.log"
        with log.open("ab") as out:
            worker = subprocess.Popen(
                [BTIC, "worker", "--config", str(config), "-c", "1", "-n", "notify@%h"],
                stdout=out,
                stderr=out,
                env=notify_env(systemd, 2_000_000),
            )
        try:
            ready = systemd.until("READY=1", [worker])
            assert "STATUS=taking tasks from notify" in ready
            systemd.until("WATCHDOG=1", [worker])
            worker.send_signal(signal.SIGTERM)
            systemd.until("STOPPING=1", [])
            assert worker.wait(timeout=120) == 0, log.read_text()
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            systemd.close()

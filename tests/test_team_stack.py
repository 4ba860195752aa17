"""A team's stack, for real: `make services` (PostgreSQL, an MLflow server on it serving artifacts, a
Prefect server with the process pool), parallel sweeps through it, servers that go away mid-training,
two Prefect workers under the deployment's concurrency limit, and the MLflow UI in headless Chromium.

One stack (the session's `team_stack`) and one repository (`pipeline_repo`) serve every test here."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch
from pipeline_support import VENV_BIN, env_for, free_port, prefect_api, set_params, sh

from videogan.model_files import load_logged_generator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXPERIMENT = "videogan-moving_mnist_generated-16px-10f"
SWEEP_SEEDS = (21, 22)


def client(stack):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=stack.mlflow_url)  # the REST API, as a user's client reads it


def experiment_id(stack) -> str:
    experiment = client(stack).get_experiment_by_name(EXPERIMENT)
    return experiment.experiment_id if experiment else client(stack).create_experiment(EXPERIMENT)


def run_named(stack, name: str):
    (run,) = client(stack).search_runs([experiment_id(stack)], filter_string=f"attributes.run_name = '{name}'")
    return run


# ---- make services -------------------------------------------------------------------------------


def test_services_answer_and_a_second_start_changes_nothing(team_stack):
    state, env = team_stack.state, team_stack.env
    assert f". {team_stack.folder / 'env'}" in team_stack.started
    assert env["MLFLOW_TRACKING_URI"] == state["mlflow"]["url"] and env["PREFECT_API_URL"] == state["prefect"]["url"]
    assert env["MLFLOW_TRACKING_USERNAME"] == "admin" and len(env["MLFLOW_TRACKING_PASSWORD"]) >= 24
    assert state["postgres"]["url"].startswith("postgresql+psycopg://")
    assert urllib.request.urlopen(f"{state['mlflow']['url']}/health", timeout=5).status == 200
    pools = prefect_api(f"{state['prefect']['url']}/work_pools/filter", {})
    assert "videogan-process" in {p["name"] for p in pools}

    secrets = (team_stack.folder / "secrets.json").read_text()
    again = team_stack.services("start").stdout
    assert again.count("already running") == 3
    assert team_stack.state == state  # the same PIDs: nothing was started twice
    assert (team_stack.folder / "secrets.json").read_text() == secrets  # and the same secrets
    assert team_stack.services("env").stdout.strip().splitlines() == [f"export {k}={v}" for k, v in env.items()]


# ---- the doors are closed ------------------------------------------------------------------------


def status_of(url: str, auth: str | None, method: str = "GET", headers: dict | None = None) -> int:
    request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def postgres_login(stack, password: str | None, url: str | None = None) -> str:
    import psycopg

    url = (url or stack.state["postgres"]["url"]).replace("postgresql+psycopg", "postgresql")
    try:
        with psycopg.connect(url, connect_timeout=5, **({} if password is None else {"password": password})):
            return "in"
    except psycopg.OperationalError as exc:
        return str(exc)


def test_each_server_refuses_requests_without_the_credentials(team_stack):
    env, secrets = team_stack.env, json.loads((team_stack.folder / "secrets.json").read_text())
    assert "no password supplied" in postgres_login(team_stack, None)
    assert "password authentication failed" in postgres_login(team_stack, "postgres")
    assert postgres_login(team_stack, secrets["postgres_password"]) == "in"
    hba = (team_stack.folder / "postgres/pg_hba.conf").read_text().splitlines()
    methods = {line.split()[-1] for line in hba if line.strip() and not line.startswith("#")}
    assert methods == {"scram-sha-256"}
    search = env["VIDEOGAN_SEARCH_STORAGE"]  # the search's own user and database, not the superuser
    assert search.startswith("postgresql+psycopg://optuna:") and search.endswith("/optuna")
    no_password = search.replace(search.split("//", 1)[1].split("@")[0], "optuna")
    assert "no password supplied" in postgres_login(team_stack, None, no_password)
    assert "password authentication failed" in postgres_login(team_stack, "wrong", no_password)
    assert postgres_login(team_stack, None, search) == "in"

    runs = f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert status_of(runs, None) == 401
    assert status_of(runs, "admin:password") == 401
    assert status_of(runs, f"admin:{env['MLFLOW_TRACKING_PASSWORD']}") == 200

    version = f"{env['PREFECT_API_URL']}/admin/version"
    assert status_of(version, None) == 401
    assert status_of(version, "videogan:wrong") == 401
    assert status_of(version, env["PREFECT_API_AUTH_STRING"]) == 200
    with pytest.raises(urllib.error.HTTPError, match="403"):  # a POST without the CSRF token
        prefect_api(f"{env['PREFECT_API_URL']}/flows/filter", {}, csrf=False)
    preflight = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    assert status_of(f"{env['PREFECT_API_URL']}/flows/filter", None, "OPTIONS", preflight) == 400
    own = env["PREFECT_API_URL"].removesuffix("/api")
    assert status_of(f"{env['PREFECT_API_URL']}/flows/filter", None, "OPTIONS", {**preflight, "Origin": own}) == 200


def test_the_secrets_and_the_data_are_private_to_their_owner(team_stack):
    folder = team_stack.folder
    assert folder.stat().st_mode & 0o077 in (0, 0o010)  # group x: PostgreSQL's own user, when run as root
    for name in ("secrets.json", "env", "mlflow-auth.ini", "state.json", "logs/mlflow.log"):
        assert (folder / name).stat().st_mode & 0o077 == 0, name
    assert (folder / "postgres").stat().st_mode & 0o077 == 0
    if os.geteuid() != 0:
        pytest.skip("only root can try the files as another user")
    for user in ("nobody", "embedded_postgres"):  # another user, and the database server's own
        for path in (folder / "secrets.json", folder / "env", folder / "mlartifacts"):
            tried = subprocess.run(
                ["ls" if path.is_dir() else "cat", str(path)], user=user, capture_output=True, text=True
            )
            assert tried.returncode != 0 and "Permission denied" in tried.stderr, (user, path, tried.stdout)


def test_a_stage_without_the_credentials_stops_at_once_naming_the_variable(pipeline_repo, team_stack):
    env = {**env_for(pipeline_repo), **team_stack.env}
    without_mlflow = {k: v for k, v in env.items() if not k.startswith("MLFLOW_TRACKING_") or k.endswith("URI")}
    cases = [
        ({**env, "PREFECT_API_AUTH_STRING": "videogan:wrong"}, "PREFECT_API_AUTH_STRING was refused"),
        ({k: v for k, v in env.items() if k != "PREFECT_API_AUTH_STRING"}, "PREFECT_API_AUTH_STRING is not set"),
        (without_mlflow, "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD are not set"),
        ({**env, "MLFLOW_TRACKING_PASSWORD": "wrong"}, "MLFLOW_TRACKING_PASSWORD were refused"),
    ]
    for case_env, said in cases:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.evaluate"],
            cwd=pipeline_repo,
            env=case_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 1 and len(errors) == 1 and said in errors[0], done.stderr[-2000:]


def test_a_taken_port_is_named_before_anything_starts(team_stack, tmp_path):
    from pipeline_support import Stack

    taken = team_stack.state["mlflow"]["port"]
    other = Stack(tmp_path / ".services")
    done = other.services(
        "start",
        "--mlflow-port",
        str(taken),
        "--postgres-port",
        str(free_port()),
        "--prefect-port",
        str(free_port()),
        check=False,
    )
    assert done.returncode == 1
    assert f"error: port {taken} on 127.0.0.1 (mlflow) is taken" in done.stderr
    assert "MLFLOW_PORT=" in done.stderr
    assert not (other.folder / "state.json").exists()

    port = free_port()
    shared = other.services("start", "--mlflow-port", str(port), "--prefect-port", str(port), check=False)
    assert shared.returncode == 1 and f"mlflow and prefect cannot share port {port}" in shared.stderr
    assert not (other.folder / "state.json").exists()


# ---- parallel sweeps -----------------------------------------------------------------------------


def experiment_metrics(shown: list, name: str) -> dict:
    """reports/metrics.json of experiment `name` in `dvc exp show --json`."""
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            if experiment.get("name") == name:
                return experiment["revs"][0]["data"]["metrics"]["reports/metrics.json"]["data"]
    raise AssertionError(f"{name} is not in dvc exp show")


@pytest.fixture(scope="module")
def sweep(pipeline_repo, team_stack):
    """Two queued experiments run at once (`dvc queue start -j 2`) against the stack's servers."""
    repo = pipeline_repo
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline for the sweep", check=False)
    names = [f"sweep-seed-{seed}" for seed in SWEEP_SEEDS]
    for name, seed in zip(names, SWEEP_SEEDS):
        sh(repo, "dvc", "exp", "run", "--queue", "-n", name, "-S", f"train.seed={seed}", env=team_stack.env)
    sh(repo, "dvc", "queue", "start", "-j", "2", env=team_stack.env)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = sh(repo, "dvc", "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(1)
    if status.count("Success") != 2:
        logs = [sh(repo, "dvc", "queue", "logs", name, check=False).stdout[-3000:] for name in names]
        raise AssertionError(f"{status}\n" + "\n".join(logs))
    shown = json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout)
    return {"names": names, "shown": shown}


def test_two_parallel_experiments_land_whole_and_apart(sweep, team_stack, tmp_path):
    import mlflow

    first, second = (run_named(team_stack, name).info for name in sweep["names"])
    assert first.start_time < second.end_time and second.start_time < first.end_time  # they ran at once
    steps_seen = set()
    for name, seed in zip(sweep["names"], SWEEP_SEEDS):
        run = run_named(team_stack, name)
        params, metrics = run.data.params, run.data.metrics
        assert params["train.seed"] == str(seed) and run.data.tags["dvc_experiment"] == name
        every, last = int(params["train.log_every"]), int(params["train.iterations"])
        history = client(team_stack).get_metric_history(run.info.run_id, "train/loss_critic")
        assert sorted(m.step for m in history) == list(range(every, last + 1, every))
        steps_seen.add(tuple(m.value for m in history))
        # the evaluation DVC recorded for this experiment is the one in this run, to the last digit
        assert metrics["eval/fd_video"] == pytest.approx(
            experiment_metrics(sweep["shown"], name)["fd_video"], rel=1e-12
        )
        # artifacts come back through the server's proxy, and the checkpoint is this run's own
        folder = tmp_path / name
        checkpoint = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="checkpoint", dst_path=str(folder), tracking_uri=team_stack.mlflow_url
        )
        saved = torch.load(Path(checkpoint) / "checkpoint.pt", weights_only=True)
        assert saved["extra"]["mlflow_run_id"] == run.info.run_id
        gif = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id,
            artifact_path="media/samples.gif",
            dst_path=str(folder),
            tracking_uri=team_stack.mlflow_url,
        )
        assert iio.imread(gif, index=None).shape[0] > 1  # an animation
        snapshots = {a.path for a in client(team_stack).list_artifacts(run.info.run_id, "snapshots")}
        snapshot_every = int(params["train.snapshot_every"])
        assert snapshots == {f"snapshots/step_{k:07d}.pt" for k in range(0, last + 1, snapshot_every)}
        mlflow.set_tracking_uri(team_stack.mlflow_url)
        [model] = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            output_format="list",
        )
        generator, _, _ = load_logged_generator(model.model_uri)
        assert generator(generator.sample_noise(2, torch.Generator().manual_seed(0))).shape[:2] == (2, 1)
    assert len(steps_seen) == 2  # two seeds, two different loss curves: nothing was mixed


# ---- the MLflow UI in a browser ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def ui_number(value: float) -> str:
    """How the MLflow UI prints a metric (its formatMetric): 3 decimals under 10, 2 under 100, else 1."""
    places = 3 if abs(value) < 10 else 2 if abs(value) < 100 else 1
    return f"{value:.{places}f}".rstrip("0").rstrip(".")


def scroll_metrics_to(page, name: str) -> None:
    """Scroll the compare page's metrics table to `name`: it is a virtualised grid (react-virtualized) that
    renders only the rows in view."""
    row = page.locator(".ReactVirtualized__Grid").get_by_text(name, exact=True)  # not the plot's axis label
    for _ in range(60):
        if row.count():
            row.first.scroll_into_view_if_needed()  # rendered is not yet in view: the values beside it must be
            return
        page.evaluate(
            "() => document.querySelectorAll('.ReactVirtualized__Grid').forEach(g => { g.scrollTop += 120; })"
        )
        page.wait_for_timeout(150)
    raise AssertionError(f"{name} is not in the compare page's metrics table")


def shown_values(page, values: list[str], shot: Path, tries: int = 4) -> None:
    """Wait until the metrics table shows every one of `values` beside eval/fd_video. The grid renders the value
    cells after the names, later on a loaded machine, and may re-render the rows it holds; so scroll to the row
    again between tries. On failure the page is saved beside `shot` to see why."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        scroll_metrics_to(page, "eval/fd_video")
        try:
            for value in values:
                page.get_by_text(value, exact=True).first.wait_for(timeout=15_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                page.screenshot(path=str(shot.with_name("mlflow-compare-failed.png")))
                shot.with_name("mlflow-compare-failed.txt").write_text(page.inner_text("body"))
                raise


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; `make test` installs it when run as root)",
)
def test_the_mlflow_ui_compares_the_two_runs_in_a_browser(sweep, team_stack, tmp_path):
    from playwright.sync_api import sync_playwright

    runs = [run_named(team_stack, name) for name in sweep["names"]]
    ids = json.dumps([r.info.run_id for r in runs]).replace(" ", "")
    compare = f'{team_stack.mlflow_url}/#/compare-runs?runs={ids}&experiments=["{experiment_id(team_stack)}"]'
    shot = Path(os.environ.get("VIDEOGAN_SCREENSHOT", tmp_path / "mlflow-compare.png"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": 1300, "height": 1100},
                http_credentials={
                    "username": team_stack.env["MLFLOW_TRACKING_USERNAME"],
                    "password": team_stack.env["MLFLOW_TRACKING_PASSWORD"],
                },
            )  # logged in, as the UI's prompt does
            page.goto(compare)
            page.get_by_text("Run details").wait_for(timeout=60_000)
            for run in runs:
                page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=30_000)
            shown_values(page, [ui_number(run.data.metrics["eval/fd_video"]) for run in runs], shot)
            text = page.inner_text("body")
            for run in runs:
                assert ui_number(run.data.metrics["eval/fd_video"]) in text.split(), run.data.metrics
            switches = page.get_by_text("Show diff only")
            for i in range(switches.count()):
                switches.nth(i).click()  # parameters, metrics and tags that differ: train.seed among them
            page.get_by_text("train.seed", exact=True).first.wait_for(timeout=10_000)
            page.get_by_text("Visualizations").first.click()  # folded: the table fits the screenshot
            assistant = page.locator("button[aria-label='Close']")
            if assistant.count():
                assistant.first.click()  # the side panel of MLflow's assistant, for a wider table
            page.get_by_text("Run details").first.scroll_into_view_if_needed()
            page.screenshot(path=str(shot))

            first = runs[0]
            gif = (
                f"{team_stack.mlflow_url}/#/experiments/{experiment_id(team_stack)}/runs/{first.info.run_id}"
                "/artifacts/media/samples.gif"
            )
            page.goto(gif)
            image = page.locator("img[src^='blob:']").first
            image.wait_for(timeout=30_000)
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
            width = image.evaluate("img => img.naturalWidth")
        finally:
            browser.close()
    expected = iio.imread(
        client(team_stack).download_artifacts(first.info.run_id, "media/samples.gif", str(tmp_path)), index=0
    ).shape[1]
    assert width == expected
    assert shot.stat().st_size > 10_000


# ---- servers that go away ------------------------------------------------------------------------


def log_lines(repo: Path) -> int:
    log = repo / "reports/train_log.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def run_relog(repo: Path, stack) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.relog"],
        cwd=repo,
        env={**env_for(repo), **stack.env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_training_goes_on_when_both_servers_stop_and_tracking_catches_up(pipeline_repo, team_stack, tmp_path):
    repo = pipeline_repo
    # long enough to stop both servers, train on without them and start them again: they are back by
    # step ~200 here (12 it/s, 14 s to start both), 400 leaves room for a machine twice as fast
    set_params(
        repo, {"train": {"iterations": 400, "log_every": 1, "snapshot_every": 100, "resume_every": 50, "seed": 5}}
    )
    output = tmp_path / "repro.log"
    with open(output, "w") as out:
        proc = subprocess.Popen(
            ["dvc", "repro"],
            cwd=repo,
            env={**env_for(repo), **team_stack.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: "starting fresh" in output.read_text() and log_lines(repo) >= 20, 300, "training")
        state = team_stack.state
        for name in ("mlflow", "prefect"):
            os.killpg(state[name]["pid"], signal.SIGTERM)
        stopped_at = log_lines(repo)
        wait_for(lambda: log_lines(repo) >= stopped_at + 10, 120, "training without the servers")
        restarted = team_stack.services("start").stdout
        assert "postgres: already running" in restarted and "mlflow: started" in restarted
        back_at = log_lines(repo)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    said = output.read_text().replace("\r", "\n")
    assert proc.returncode == 0, said[-3000:]
    assert back_at < 400, "training ended before the servers were back: raise train.iterations"
    assert said.count("stopped answering") == 1, said[-3000:]  # said once, not once per step
    assert said.count("answers again") == 1
    assert "Traceback" not in said

    # nothing the training wrote was lost: every step, snapshot, the checkpoint, the model, the evaluation
    from videogan.training.checkpoint import load

    run_id = load(repo / "models/checkpoint.pt", kinds=("full",))["extra"]["mlflow_run_id"]
    c = client(team_stack)
    steps = sorted(m.step for m in c.get_metric_history(run_id, "train/loss_critic"))
    assert steps == list(range(1, 401))
    snapshots = {a.path for a in c.list_artifacts(run_id, "snapshots")}
    assert snapshots == {f"snapshots/{p.name}" for p in (repo / "models/snapshots").glob("*.pt")}
    assert {a.path for a in c.list_artifacts(run_id, "checkpoint")} == {"checkpoint/checkpoint.pt"}
    run = c.get_run(run_id)
    assert run.info.status == "FINISHED" and "eval/fd_video" in run.data.metrics

    # Prefect: the stages' flow runs, the train one included, are on the restarted server, completed
    prefect = team_stack.state["prefect"]["url"]
    flows = {f["id"]: f["name"] for f in prefect_api(f"{prefect}/flows/filter", {})}
    recent = prefect_api(f"{prefect}/flow_runs/filter", {"sort": "START_TIME_DESC", "limit": 3})
    assert {flows[r["flow_id"]]: r["state_type"] for r in recent} == {
        "train": "COMPLETED",
        "evaluate": "COMPLETED",
        "render": "COMPLETED",
    }

    relog = run_relog(repo, team_stack)
    assert relog.returncode == 0, relog.stderr
    assert "sent 0 metric values, 0 snapshots file(s), 0 checkpoint file(s)" in relog.stdout  # nothing missing


def test_relog_sends_what_a_run_lacks_and_only_that(pipeline_repo, team_stack, tmp_path):
    """The run as if the server had gone away halfway and for all but the first snapshot."""
    repo, c = pipeline_repo, client(team_stack)
    original = torch.load(repo / "models/checkpoint.pt", weights_only=True)
    partial = c.create_run(experiment_id(team_stack), run_name="relog-check")
    log = [json.loads(line) for line in (repo / "reports/train_log.jsonl").read_text().splitlines()]
    from mlflow.entities import Metric

    held = len(log) // 2
    c.log_batch(
        partial.info.run_id,
        metrics=[Metric("train/loss_critic", row["loss_critic"], 0, row["step"]) for row in log[:held]],
    )
    c.log_artifact(partial.info.run_id, str(repo / "models/snapshots/step_0000000.pt"), "snapshots")
    moved = dict(original, extra={**original["extra"], "mlflow_run_id": partial.info.run_id})
    torch.save(moved, repo / "models/checkpoint.pt")
    try:
        done = run_relog(repo, team_stack)
    finally:
        torch.save(original, repo / "models/checkpoint.pt")
    assert done.returncode == 0, done.stderr
    logged = {
        name: [row["step"] for row in log if row.get(name) is not None]  # some are not logged every step
        for name in {k for row in log for k in row} - {"step"}
    }
    sent_values = int(re.search(r"sent (\d+) metric values", done.stdout).group(1))
    assert sent_values == sum(map(len, logged.values())) - held  # all but what the run held
    for name, steps in logged.items():
        history = c.get_metric_history(partial.info.run_id, f"train/{name}")
        assert sorted(m.step for m in history) == steps, name  # every step once
    local = sorted(p.name for p in (repo / "models/snapshots").glob("*.pt"))
    assert sorted(a.path for a in c.list_artifacts(partial.info.run_id, "snapshots")) == [
        f"snapshots/{n}" for n in local
    ]


# ---- two Prefect workers and the deployment's concurrency limit ----------------------------------

POOL = "videogan-process"
DEPLOYMENT = "retrain/videogan-retrain"


def prefect(repo: Path, env: dict, *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "prefect"), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_two_workers_run_two_retrainings_one_at_a_time(pipeline_repo, team_stack, tmp_path):
    repo, url = pipeline_repo, team_stack.state["prefect"]["url"]
    # the tiny config again: each retraining is `dvc exp run --temp` of the workspace (train, evaluate, render)
    set_params(repo, {"train": {"iterations": 6, "log_every": 2, "snapshot_every": 3, "resume_every": 2, "seed": 0}})
    env = {**env_for(repo), **team_stack.env, "PREFECT_WORKER_QUERY_SECONDS": "2"}  # Prefect's: 10 s
    prefect(repo, env, "--no-prompt", "deploy", "--prefect-file", "prefect.yaml", "-n", "videogan-retrain")
    deployment = prefect_api(f"{url}/deployments/name/{DEPLOYMENT}")
    assert deployment["global_concurrency_limit"]["limit"] == 1 and deployment["schedules"][0]["active"]
    assert (
        Path(deployment["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"]).resolve()
        == repo.resolve()
    )

    run_ids = []
    for seed in (31, 32):  # a wide margin: a 6-iteration model's fd_video is noise
        out = prefect(
            repo,
            env,
            "deployment",
            "run",
            DEPLOYMENT,
            "-p",
            f'overrides=["train.seed={seed}"]',
            "-p",
            "max_fd_video_worsening=1000",
        )
        run_ids.append(re.search(r"UUID: ([0-9a-f-]{36})", out).group(1))
    workers = []
    for i in range(2):
        log = open(tmp_path / f"worker{i}.log", "w")
        workers.append(
            subprocess.Popen(
                [
                    str(VENV_BIN / "prefect"),
                    "worker",
                    "start",
                    "--pool",
                    POOL,
                    "--name",
                    f"worker-{i}",
                    "--install-policy",
                    "never",
                ],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    states_seen, most_running = set(), 0
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            runs = [prefect_api(f"{url}/flow_runs/{rid}") for rid in run_ids]
            states_seen |= {r["state_name"] for r in runs}
            most_running = max(most_running, sum(r["state_type"] == "RUNNING" for r in runs))
            if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs):
                break
            time.sleep(0.5)
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:  # still finishing a flow run's subprocess
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)
    logs = "\n".join((tmp_path / f"worker{i}.log").read_text()[-3000:] for i in range(2))
    assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], logs
    assert most_running == 1, states_seen  # never both at once
    assert "AwaitingConcurrencySlot" in states_seen, states_seen  # the second one waited its turn
    ran_on = {prefect_api(f"{url}/flow_runs/{rid}")["work_queue_name"] for rid in run_ids}
    assert ran_on == {"default"}
    for run in runs:
        name = f"retrain-{run['name']}"
        recorded = run_named(team_stack, name)  # each retraining's MLflow run, on the server
        assert "eval/fd_video" in recorded.data.metrics


# ---- rotate, then stop ---------------------------------------------------------------------------


def test_four_trials_on_two_workers_share_one_study_on_the_team_postgres(pipeline_repo, team_stack):
    """`python -m pipeline.search --workers 2` with the stack's env: one study in PostgreSQL, every trial a DVC
    experiment and an MLflow run on the team's server."""
    import optuna

    repo = pipeline_repo
    set_params(repo, {"train": {"iterations": 6, "log_every": 2, "snapshot_every": 3, "resume_every": 2, "seed": 0}})
    rates = {"low": 1e-4, "high": 1e-3, "log": True}
    spec = {
        "study": "team",
        "trials": 4,
        "params": {"train.optim.critic.lr": rates, "train.optim.decoder.lr": rates},
        "pruner": {"kind": "none", "samples": 20},
        "fixed": {"evaluate.fvd.enabled": False},
    }
    (repo / "team-search.yaml").write_text(json.dumps(spec))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "the team's search", check=False)
    done = sh(
        repo,
        "python",
        "-m",
        "pipeline.search",
        "--config",
        "team-search.yaml",
        "--workers",
        "2",
        env=team_stack.env,
        timeout=900,
    )
    study = optuna.load_study(study_name="team", storage=team_stack.env["VIDEOGAN_SEARCH_STORAGE"])
    trials = study.trials
    failures = [t.user_attrs.get("failure") for t in trials if t.state.name == "FAIL"]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4, failures or done.stdout[-3000:]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # four distinct points
    assert any(
        a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
        for a in trials
        for b in trials
        if a is not b
    )  # two ran at once
    assert not (repo / ".videogan/search/optuna.db").exists()  # the study is in the team's database
    refs = sh(repo, "git", "for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    assert {f"team-{n}" for n in range(4)} <= {ref.rsplit("/", 1)[-1] for ref in refs}
    shown = json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout)
    runs = client(team_stack).search_runs([experiment_id(team_stack)], filter_string="tags.`search.study` = 'team'")
    assert sorted(r.data.tags["search.trial"] for r in runs) == ["0", "1", "2", "3"]
    for trial in trials:
        name = f"team-{trial.number}"
        assert experiment_metrics(shown, name)["fd_video"] == pytest.approx(trial.value, rel=1e-12)
        run = next(r for r in runs if r.info.run_name == name)
        assert run.data.metrics["eval/fd_video"] == pytest.approx(trial.value, rel=1e-12)
        assert run.data.params["train.optim.critic.lr"] == str(trial.params["train.optim.critic.lr"])
        assert run.data.tags["search.state"] == "COMPLETE"


def test_rotate_makes_new_secrets_and_the_old_ones_stop_working(team_stack, sweep):
    old_env, old = team_stack.env, json.loads((team_stack.folder / "secrets.json").read_text())
    said = team_stack.services("rotate").stdout
    assert (
        "update MLFLOW_TRACKING_PASSWORD, PREFECT_API_AUTH_STRING and VIDEOGAN_SEARCH_STORAGE" in said and ". " in said
    ), said
    new_env, new = team_stack.env, json.loads((team_stack.folder / "secrets.json").read_text())
    assert all(new[key] != old[key] for key in old)
    os.environ.update({k: new_env[k] for k in ("MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING")})

    assert "password authentication failed" in postgres_login(team_stack, old["postgres_password"])
    assert postgres_login(team_stack, new["postgres_password"]) == "in"
    runs = f"{new_env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert status_of(runs, f"admin:{old_env['MLFLOW_TRACKING_PASSWORD']}") == 401
    assert status_of(runs, f"admin:{new_env['MLFLOW_TRACKING_PASSWORD']}") == 200
    version = f"{new_env['PREFECT_API_URL']}/admin/version"
    assert status_of(version, old_env["PREFECT_API_AUTH_STRING"]) == 401
    assert status_of(version, new_env["PREFECT_API_AUTH_STRING"]) == 200
    for name in sweep["names"]:  # nothing was lost
        assert "eval/fd_video" in run_named(team_stack, name).data.metrics


# ---- make services-stop --------------------------------------------------------------------------


def test_stop_ends_every_service_by_pid_and_a_new_start_has_the_same_runs(team_stack, sweep):
    from pipeline.processes import alive

    before = team_stack.state
    said = team_stack.services("stop").stdout
    assert all(f"{name}: stopped (PID {before[name]['pid']})" in said for name in before), said
    assert not any(alive(service["pid"]) for service in before.values())
    assert (team_stack.folder / "postgres" / "PG_VERSION").exists()  # the data stays

    assert all(team_stack.state[name]["pid"] is None for name in before)
    team_stack.services("start")  # on the ports of the last start
    assert {name: s["port"] for name, s in team_stack.state.items()} == {name: s["port"] for name, s in before.items()}
    for name in sweep["names"]:
        run = run_named(team_stack, name)  # the runs, from PostgreSQL, and their artifacts
        assert "eval/fd_video" in run.data.metrics
        assert client(team_stack).list_artifacts(run.info.run_id, "checkpoint")

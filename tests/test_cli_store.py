"""``orchtui runs|show|logs|resume|rerun|prune`` as real subprocesses."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from core.clock import ManualClock
from core.models import TaskResult, TaskStatus, TaskTransition, Workflow, WorkflowStep
from core.store import Store


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchtui", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def record_run(store: Store, run_id: str, workflow: str, status: str, outputs: dict[str, object],
               failed: str | None = None) -> None:
    """Record a finished run through the store's public API, with a log per step."""
    steps = [*outputs, *([failed] if failed else [])]
    store.create_run(run_id, Workflow(name=workflow, steps=[WorkflowStep(name=s) for s in steps]), {"n": 1})
    now = time.time()
    for step in steps:
        log = store.log_dir(run_id) / f"{step}.1.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join(f"{step} line {i}\n" for i in range(5)))
        store.record_transition(TaskTransition("t", step, TaskStatus.RUNNING, now, run_id, 1, log_path=str(log)))
        if step == failed:
            result = TaskResult(success=False, error_message="exit status 2", exit_code=2)
            store.record_transition(TaskTransition("t", step, TaskStatus.FAILED, now, run_id, 1, result))
        else:
            result = TaskResult(success=True, data=outputs[step], exit_code=0)
            store.record_transition(TaskTransition("t", step, TaskStatus.COMPLETED, now, run_id, 1, result))
    store.finish_run(run_id, status, f"step '{failed}' failed" if failed else "")
    store.flush()


@pytest.fixture
def history(isolated_state: Path) -> Path:
    with Store(isolated_state / "orchtui.db") as store:
        record_run(store, "run-aaa111", "etl", "completed", {"extract": {"rows": 3}, "load": "ok"})
        record_run(store, "run-aaa222", "etl", "failed", {"extract": {"rows": 0}}, failed="load")
        record_run(store, "run-bbb333", "report", "completed", {"render": "report.html"})
    return isolated_state


def test_runs_lists_and_filters(history: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    out = cli(["runs"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["run", "workflow", "status", "started", "duration"]
    assert [line.split()[0] for line in lines[1:]] == ["run-bbb333", "run-aaa222", "run-aaa111"]
    data = json.loads(cli(["runs", "--workflow", "etl", "--status", "FAILED", "--json"], cli_env, tmp_path).stdout)
    assert [(r["run_id"], r["status"]) for r in data] == [("run-aaa222", "failed")]
    assert data[0]["error"] == "step 'load' failed" and data[0]["duration"] is not None
    assert len(json.loads(cli(["runs", "-n", "1", "--json"], cli_env, tmp_path).stdout)) == 1
    empty = cli(["runs", "--workflow", "nope"], cli_env, tmp_path)
    assert empty.returncode == 0 and "no runs recorded matching the filters" in empty.stdout


def test_show_prints_steps_errors_and_outputs(history: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    out = cli(["show", "run-aaa2"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "etl  run run-aaa222  failed" in out.stdout
    assert "error: step 'load' failed" in out.stdout
    assert "{'rows': 0}" in out.stdout and "exit status 2" in out.stdout
    data = json.loads(cli(["show", "run-aaa111", "--json"], cli_env, tmp_path).stdout)
    assert data["steps"]["extract"]["output"] == {"rows": 3}
    assert data["steps"]["load"]["attempts"][0]["status"] == "completed"
    assert data["params"] == {"n": 1} and data["resumed_by"] == []


def test_show_history_lists_each_steps_changes_oldest_first(history: Path, cli_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    out = cli(["show", "run-aaa222", "--history"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.split("history", 1)[1].splitlines() if "running" in line
            or "completed" in line or "failed" in line]
    assert [(row[2], row[3]) for row in rows if row[0] != "time"] == [
        ("extract", "running"), ("extract", "completed"), ("load", "running"), ("load", "failed")]
    data = json.loads(cli(["show", "run-aaa222", "--history", "--json"], cli_env, tmp_path).stdout)
    assert [(e["step"], e["status"], e["attempt"]) for e in data["history"]] == [
        ("extract", "running", 1), ("extract", "completed", 1), ("load", "running", 1), ("load", "failed", 1)]
    assert "history" not in json.loads(cli(["show", "run-aaa222", "--json"], cli_env, tmp_path).stdout)


def test_show_unknown_and_ambiguous_runs_are_one_line_errors(history: Path, cli_env: dict[str, str],
                                                             tmp_path: Path) -> None:
    missing = cli(["show", "zzz"], cli_env, tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: no run matches 'zzz'; list runs with `orchtui runs`"
    ambiguous = cli(["show", "run-aaa", "--json"], cli_env, tmp_path)
    assert ambiguous.returncode == 1
    error = json.loads(ambiguous.stdout)
    assert error["error_code"] == "RUN_AMBIGUOUS" and error["details"]["matches"] == ["run-aaa222", "run-aaa111"]


def test_logs_of_a_step_of_a_run_and_tails(history: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    one = cli(["logs", "run-aaa111", "load"], cli_env, tmp_path)
    assert one.returncode == 0 and one.stdout == "".join(f"load line {i}\n" for i in range(5))
    every = cli(["logs", "run-aaa111", "--tail", "1"], cli_env, tmp_path)
    assert every.stdout == "==> extract (attempt 1) <==\nextract line 4\n==> load (attempt 1) <==\nload line 4\n"
    never = cli(["logs", "run-aaa111", "load", "--attempt", "2"], cli_env, tmp_path)  # a finished run's
    assert never.returncode == 1 and "step 'load' of run run-aaa111 has no attempt 2: it made 1 attempt(s)" in never.stderr
    bad = cli(["logs", "run-aaa111", "lod"], cli_env, tmp_path)
    assert bad.returncode == 1 and "has no step 'lod'" in bad.stderr


def test_logs_says_why_a_finished_step_has_no_log(isolated_state: Path, cli_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    with Store(isolated_state / "orchtui.db") as store:
        steps = [WorkflowStep(name="silent"), WorkflowStep(name="fails"), WorkflowStep(name="after")]
        store.create_run("run-quiet1", Workflow(name="quiet", steps=steps), {})
        now = time.time()
        store.record_transition(TaskTransition("t", "silent", TaskStatus.RUNNING, now, "run-quiet1", 1))
        store.record_transition(TaskTransition("t", "silent", TaskStatus.COMPLETED, now, "run-quiet1", 1,
                                               TaskResult(success=True, data="", exit_code=0)))
        store.record_transition(TaskTransition("t", "fails", TaskStatus.RUNNING, now, "run-quiet1", 1))
        store.record_transition(TaskTransition("t", "fails", TaskStatus.FAILED, now, "run-quiet1", 1,
                                               TaskResult(success=False, error_message="exit 3", exit_code=3)))
        store.record_transition(TaskTransition("t", "after", TaskStatus.SKIPPED, now, "run-quiet1", 0))
        store.finish_run("run-quiet1", "failed", "step 'fails' failed")
        store.flush()
    notes = {step: cli(["logs", "run-quiet1", *([step] if step else [])], cli_env, tmp_path)
             for step in ("silent", "fails", "after", "")}
    assert all(out.returncode == 0 and out.stdout == "" for out in notes.values())
    assert notes["silent"].stderr.strip() == "step 'silent' of run run-quiet1 (completed) wrote no output"
    assert notes["fails"].stderr.strip() == "step 'fails' of run run-quiet1 (failed) wrote no output"
    assert notes["after"].stderr.strip() == "step 'after' of run run-quiet1 was skipped: it never ran, so it has no log"
    assert notes[""].stderr.strip() == "no step of run run-quiet1 wrote any output"


def test_logs_follow_of_a_skipped_step_says_it_never_ran(isolated_state: Path, cli_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    with Store(isolated_state / "orchtui.db") as store:
        store.create_run("run-skip1", Workflow(name="w", steps=[WorkflowStep(name="after")]), {})
        store.record_transition(TaskTransition("t", "after", TaskStatus.SKIPPED, time.time(), "run-skip1", 0))
        store.finish_run("run-skip1", "failed", "an earlier step failed")
    out = cli(["logs", "run-skip1", "after", "-f"], cli_env, tmp_path)
    assert out.returncode == 0 and out.stdout == ""
    assert out.stderr.strip() == "step 'after' of run run-skip1 was skipped: it never ran, so it has no log"


def test_logs_of_a_reused_step_names_the_run_that_ran_it_through_resumes_of_resumes(
        isolated_state: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    workflow = Workflow(name="w", steps=[WorkflowStep(name="a"), WorkflowStep(name="b")])
    with Store(isolated_state / "orchtui.db", clock=ManualClock(wall_start=time.time() - 40 * 86400)) as store:
        record_run(store, "run-first", "w", "failed", {"a": 1}, failed="b")
    with Store(isolated_state / "orchtui.db") as store:
        for run_id, parent in (("run-second", "run-first"), ("run-third", "run-second")):
            store.create_run(run_id, workflow, {}, parent_run_id=parent, preset_outputs={"a": 1})
            store.finish_run(run_id, "failed", "step 'b' failed")
    for follow in ([], ["-f"]):
        out = cli(["logs", "run-third", "a", *follow], cli_env, tmp_path)
        assert out.returncode == 0 and out.stdout == ""
        assert out.stderr.strip() == ("step 'a' of run run-third reused the output of run run-first; "
                                      "`orchtui logs run-first a` prints its log")
    assert "pruned 1 run(s)" in cli(["prune", "--older-than", "30d"], cli_env, tmp_path).stdout
    gone = cli(["logs", "run-third", "a"], cli_env, tmp_path)
    assert gone.stderr.strip() == ("step 'a' of run run-third reused the output of run run-first, "
                                   "which has been pruned with its logs")


def test_prune_parses_ages_and_deletes_logs(history: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    kept = cli(["prune", "--older-than", "30d", "--json"], cli_env, tmp_path)
    assert kept.returncode == 0 and json.loads(kept.stdout)["pruned"] == 0
    bad = cli(["prune", "--older-than", "30 days"], cli_env, tmp_path)
    assert bad.returncode == 2 and "is not an age" in bad.stderr
    time.sleep(0.01)
    gone = cli(["prune", "--older-than", "0s"], cli_env, tmp_path)
    assert gone.returncode == 0 and "pruned 3 run(s)" in gone.stdout
    assert not (history / "runs" / "run-aaa111").exists()
    assert json.loads(cli(["runs", "--json"], cli_env, tmp_path).stdout) == []


def test_resume_refuses_a_new_run_id_a_stored_run_has(history: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    out = cli(["resume", "run-aaa222", "--run-id", "run-bbb333"], cli_env, tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "run id 'run-bbb333' is taken by a stored run" in out.stderr
    taken = json.loads(cli(["show", "run-bbb333", "--json"], cli_env, tmp_path).stdout)
    assert taken["workflow"] == "report" and taken["status"] == "completed"
    assert list(taken["steps"]) == ["render"]


def _start_at_once(args_list: list[list[str]], env: dict[str, str], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Start one CLI process per argument list together, and return each one's outcome."""
    procs = [subprocess.Popen([sys.executable, "-m", "orchtui", *args], env=env, cwd=cwd, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for args in args_list]
    outcomes = []
    for proc, args in zip(procs, args_list, strict=True):
        out, err = proc.communicate(timeout=120)
        outcomes.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("command", [["resume", "run-aaa222"], ["rerun", "run-aaa222", "--from", "load"]],
                         ids=["resume", "rerun"])
def test_an_empty_new_run_id_is_refused_not_replaced_by_a_random_one(
        history: Path, cli_env: dict[str, str], tmp_path: Path, command: list[str]) -> None:
    out = cli([*command, "--run-id", ""], cli_env, tmp_path)  # a script's unset variable, say
    assert out.returncode == 1 and out.stderr.startswith("error: invalid run id ''"), out.stderr


def test_a_run_id_longer_than_any_is_not_found_without_asking_the_store(
        history: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    out = cli(["show", "x" * 60_000], cli_env, tmp_path)
    assert out.returncode == 1 and "(60000 characters): run ids are at most 128" in out.stderr, out.stderr


def test_two_resumes_of_one_run_at_once_run_its_steps_once(cli_env: dict[str, str], tmp_path: Path,
                                                           isolated_state: Path) -> None:
    trace = shlex.quote(str(tmp_path / "trace.txt"))
    ok = shlex.quote(str(tmp_path / "ok"))
    flaky = tmp_path / "flaky.yaml"
    flaky.write_text("name: flaky\nsteps:\n  - name: once\n    module: shell\n    action: run\n"
                     f"    parameters: {{command: {json.dumps(f'echo ran >> {trace}; test -e {ok}')}}}\n")
    first = cli(["run", str(flaky), "--json"], cli_env, tmp_path)
    assert first.returncode == 1, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    (tmp_path / "ok").touch()
    outcomes = _start_at_once([["resume", run_id, "--json"]] * 3, cli_env, tmp_path)
    codes = sorted(o.returncode for o in outcomes)
    assert codes == [0, 1, 1], [o.stderr for o in outcomes]
    refused = [json.loads(o.stdout) for o in outcomes if o.returncode == 1]
    assert {r.get("error_code") for r in refused} == {"RUN_ALREADY_RESUMED"}
    assert (tmp_path / "trace.txt").read_text().split() == ["ran", "ran"]  # the failed run, then one resume
    shown = json.loads(cli(["show", run_id, "--json"], cli_env, tmp_path).stdout)
    assert len(shown["resumed_by"]) == 1


def test_runs_show_and_logs_read_a_state_dir_that_may_not_be_written(
        history: Path, cli_env: dict[str, str], tmp_path: Path, read_only) -> None:
    with read_only(history):
        runs = cli(["runs", "--json"], cli_env, tmp_path)
        assert runs.returncode == 0, runs.stderr
        assert {r["run_id"] for r in json.loads(runs.stdout)} == {"run-aaa111", "run-aaa222", "run-bbb333"}
        assert "may not be written here" in runs.stderr
        shown = cli(["show", "run-aaa111", "--json"], cli_env, tmp_path)
        assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "completed"
        logs = cli(["logs", "run-aaa111", "load", "--tail", "1"], cli_env, tmp_path)
        assert logs.returncode == 0 and logs.stdout == "load line 4\n"
        pruned = cli(["prune", "--older-than", "0s"], cli_env, tmp_path)
        assert pruned.returncode == 1 and "is not writable" in pruned.stderr and "Traceback" not in pruned.stderr


_DIE_RUNNING = """
import os, sys
from pathlib import Path
from core.models import Workflow, WorkflowStep
from core.store import Store
store = Store(Path(sys.argv[1]))
store.create_run("run-orphan", Workflow(name="w", steps=[WorkflowStep(name="s")]))
store.flush()
os._exit(0)  # dies with its run "running"
"""


def test_logs_follow_of_a_dead_run_in_a_state_dir_that_may_not_be_written_ends(
        isolated_state: Path, cli_env: dict[str, str], tmp_path: Path, read_only) -> None:
    died = subprocess.run([sys.executable, "-c", _DIE_RUNNING, str(isolated_state / "orchtui.db")],
                          env=cli_env, capture_output=True, text=True, timeout=60)
    assert died.returncode == 0, died.stderr
    with read_only(isolated_state):
        follow = cli(["logs", "run-orphan", "-f"], cli_env, tmp_path)
    assert follow.returncode == 0 and "Traceback" not in follow.stderr
    assert "ended, and the run cannot be marked interrupted" in follow.stderr


def test_parse_age_units() -> None:
    from orchtui.cli.store_cmds import parse_age

    assert [parse_age(t) for t in ("45s", "90m", "12h", "30d", "2w", "1.5h")] == [45, 5400, 43200, 2592000, 1209600, 5400]


@pytest.mark.parametrize(("text", "seconds"), [("1h30m", 5400), ("1d 12h", 129600), ("2w1d", 1296000)])
def test_parse_age_takes_a_sum_of_units_as_prune_prints_it(text: str, seconds: float) -> None:
    from orchtui.cli.store_cmds import parse_age

    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["abc", "1h x", "", "h1", "30"])
def test_parse_age_refuses_what_is_not_an_age(text: str) -> None:
    from orchtui.cli.store_cmds import parse_age

    with pytest.raises(click.BadParameter, match="is not an age"):
        parse_age(text)


def test_prune_keeps_recent_runs(isolated_state: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    clock = ManualClock(wall_start=time.time() - 40 * 86400)
    with Store(isolated_state / "orchtui.db", clock=clock) as store:
        store.create_run("run-old", Workflow(name="w"))
        store.finish_run("run-old", "completed")
    with Store(isolated_state / "orchtui.db") as store:
        record_run(store, "run-new", "w", "completed", {"x": 1})
    out = cli(["prune", "--older-than", "30d"], cli_env, tmp_path)
    assert out.returncode == 0 and "pruned 1 run(s)" in out.stdout
    assert [r["run_id"] for r in json.loads(cli(["runs", "--json"], cli_env, tmp_path).stdout)] == ["run-new"]


def write_chain(root: Path, *, block: bool = False) -> Path:
    trace = shlex.quote(str(root / "trace.txt"))
    gate = shlex.quote(str(root / "gate"))
    talk = f"for i in 1 2 3; do echo talk $i; done; while [ -e {gate} ]; do sleep 0.05; done; echo talk end"
    steps = {
        "first": f"echo first >> {trace}; echo one",
        "second": (talk if block else "echo two") + f"; echo second >> {trace}",
        "third": f"echo third >> {trace}; echo three",
    }
    lines = ["name: chain", "steps:"]
    previous = None
    for name, command in steps.items():
        lines += [f"  - name: {name}", "    module: shell", "    action: run",
                  f"    parameters: {{command: {json.dumps(command)}}}"]
        if previous:
            lines.append(f"    dependencies: [{previous}]")
        previous = name
    path = root / "chain.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_rerun_from_a_step(cli_env: dict[str, str], tmp_path: Path, isolated_state: Path) -> None:
    first = cli(["run", str(write_chain(tmp_path)), "--json"], cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    not_resumable = cli(["resume", run_id], cli_env, tmp_path)
    assert not_resumable.returncode == 1 and "nothing to resume" in not_resumable.stderr
    bad_step = cli(["rerun", run_id, "--from", "secnd"], cli_env, tmp_path)
    assert bad_step.returncode == 1 and "did you mean 'second'" in bad_step.stderr
    again = cli(["rerun", run_id, "--from", "second"], cli_env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"rerunning {run_id} from step second as run" in again.stdout
    assert (tmp_path / "trace.txt").read_text().split() == ["first", "second", "third", "second", "third"]
    shown = json.loads(cli(["show", run_id, "--json"], cli_env, tmp_path).stdout)
    assert len(shown["resumed_by"]) == 1


FIXABLE = """name: fixable
steps:
  - {name: a, module: shell, action: run, parameters: {command: "echo a >> trace.txt"}}
  - {name: b, module: shell, action: run, dependencies: [a], parameters: {command: "exit 3"}}
"""


def _failed_run(tmp_path: Path, cli_env: dict[str, str]) -> tuple[Path, str]:
    """Run FIXABLE (b fails), then 'fix' b in the file; return the file and the run id."""
    file = tmp_path / "fixable.yaml"
    file.write_text(FIXABLE)
    failed = cli(["run", "fixable.yaml", "--json"], cli_env, tmp_path)
    assert failed.returncode == 1, failed.stderr
    file.write_text(FIXABLE.replace("exit 3", "echo b >> trace.txt"))
    return file, json.loads(failed.stdout)["run_id"]


@pytest.mark.slow
def test_resume_runs_the_stored_definition_and_says_the_file_changed(
    cli_env: dict[str, str], tmp_path: Path, isolated_state: Path,
) -> None:
    file, run_id = _failed_run(tmp_path, cli_env)
    resumed = cli(["resume", run_id], cli_env, tmp_path)
    assert resumed.returncode == 1  # the stored b still exits 3
    assert f"note: {file} changed since run {run_id} started (step 'b' changed)" in resumed.stderr
    assert "--reload" in resumed.stderr


@pytest.mark.slow
def test_resume_with_reload_runs_the_fixed_file_and_keeps_completed_steps(
    cli_env: dict[str, str], tmp_path: Path, isolated_state: Path,
) -> None:
    file, run_id = _failed_run(tmp_path, cli_env)
    file.write_text(file.read_text() + "  - {name: c, module: builtin, action: echo, dependencies: [b], "
                    "parameters: {message: added}}\n")
    resumed = cli(["resume", run_id, "--reload", "--json"], cli_env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["definition"] == "file" and result["reused_steps"] == ["a"]
    assert result["results"]["c"] == "added" and "note:" not in resumed.stderr
    assert (tmp_path / "trace.txt").read_text().split() == ["a", "b"]  # a ran once


@pytest.mark.slow
def test_resume_reload_of_a_file_that_no_longer_validates_is_a_located_error(
    cli_env: dict[str, str], tmp_path: Path, isolated_state: Path,
) -> None:
    file, run_id = _failed_run(tmp_path, cli_env)
    file.write_text(file.read_text().replace("dependencies: [a]", "dependencies: [ghost]"))
    resumed = cli(["resume", run_id, "--reload"], cli_env, tmp_path)
    assert resumed.returncode == 1 and "fixable.yaml:4:" in resumed.stderr and "ghost" in resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert json.loads(cli(["show", run_id, "--json"], cli_env, tmp_path).stdout)["resumed_by"] == []


@pytest.mark.slow
def test_resume_reload_of_a_deleted_file_is_one_clear_line(
    cli_env: dict[str, str], tmp_path: Path, isolated_state: Path,
) -> None:
    file, run_id = _failed_run(tmp_path, cli_env)
    file.unlink()
    resumed = cli(["resume", run_id, "--reload", "--json"], cli_env, tmp_path)
    assert resumed.returncode == 1 and json.loads(resumed.stdout)["error_code"] == "DEFINITION_UNAVAILABLE"
    assert "Traceback" not in resumed.stderr


PARAMETRISED = """name: parametrised
params:
  who: {type: string, default: world}
  code: {type: integer, default: 3}
steps:
  - {name: a, module: shell, action: run, parameters: {command: "echo a-{{ params.who }} >> trace.txt"}}
  - {name: b, module: shell, action: run, dependencies: [a], parameters: {command: "exit {{ params.code }}"}}
  - {name: c, module: shell, action: run, dependencies: [b], parameters: {command: "echo c-{{ params.who }} >> trace.txt"}}
"""


def _failed_parametrised_run(tmp_path: Path, cli_env: dict[str, str]) -> str:
    (tmp_path / "parametrised.yaml").write_text(PARAMETRISED)
    failed = cli(["run", "parametrised.yaml", "--json"], cli_env, tmp_path)
    assert failed.returncode == 1, failed.stderr
    return json.loads(failed.stdout)["run_id"]


@pytest.mark.slow
def test_resume_with_a_parameter_runs_the_unfinished_steps_with_the_new_value(
    cli_env: dict[str, str], tmp_path: Path, isolated_state: Path,
) -> None:
    run_id = _failed_parametrised_run(tmp_path, cli_env)
    resumed = cli(["resume", run_id, "-p", "code=0", "--json"], cli_env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["changed_params"] == ["code"] and "note:" not in resumed.stderr
    assert (tmp_path / "trace.txt").read_text().split() == ["a-world", "c-world"]


@pytest.mark.slow
def test_resume_names_the_completed_steps_that_keep_outputs_of_an_old_parameter_value(
    cli_env: dict[str, str], tmp_path: Path, isolated_state: Path,
) -> None:
    run_id = _failed_parametrised_run(tmp_path, cli_env)
    resumed = cli(["resume", run_id, "-p", "code=0", "-p", "who=you"], cli_env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"note: completed step(s) a used code, who and keep the outputs made with the old value; " \
           f"`orchtui rerun {run_id} --from a` runs them again" in resumed.stderr
    assert (tmp_path / "trace.txt").read_text().split() == ["a-world", "c-you"]


@pytest.mark.slow
def test_resume_with_bad_parameters_lists_each_problem_and_starts_nothing(
    cli_env: dict[str, str], tmp_path: Path, isolated_state: Path,
) -> None:
    run_id = _failed_parametrised_run(tmp_path, cli_env)
    refused = cli(["resume", run_id, "-p", "code=zero", "-p", "whom=x"], cli_env, tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    lines = refused.stderr.splitlines()
    assert any("'code' must be an integer" in line for line in lines)
    assert any("has no parameter 'whom'" in line and "did you mean 'who'" in line for line in lines)
    assert json.loads(cli(["show", run_id, "--json"], cli_env, tmp_path).stdout)["resumed_by"] == []


@pytest.mark.slow
def test_resume_reload_of_a_file_with_a_new_required_parameter_takes_it_with_p(
    cli_env: dict[str, str], tmp_path: Path, isolated_state: Path,
) -> None:
    run_id = _failed_parametrised_run(tmp_path, cli_env)
    file = tmp_path / "parametrised.yaml"
    file.write_text(PARAMETRISED.replace("params:\n", "params:\n  tag: {type: string, required: true}\n")
                    .replace("c-{{ params.who }}", "c-{{ params.tag }}").replace("exit {{ params.code }}", "true"))
    missing = cli(["resume", run_id, "--reload"], cli_env, tmp_path)
    assert missing.returncode == 1 and "needs parameter 'tag'" in missing.stderr and "-p tag=VALUE" in missing.stderr
    resumed = cli(["resume", run_id, "--reload", "-p", "tag=v2"], cli_env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "trace.txt").read_text().split() == ["a-world", "c-v2"]


def _first_recorded_run(state: Path) -> str:
    """Wait until a run is recorded in the store under ``state`` (by another process); return its id."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (state / "orchtui.db").exists():
            with Store(state / "orchtui.db", recover=False) as store:
                runs = store.list_runs()
                if runs:
                    return runs[0].run_id
        time.sleep(0.05)
    raise AssertionError("no run was recorded within 60 s")


@pytest.mark.slow
def test_logs_follow_a_step_run_by_another_process(cli_env: dict[str, str], tmp_path: Path,
                                                   isolated_state: Path) -> None:
    (tmp_path / "gate").touch()
    run = subprocess.Popen([sys.executable, "-m", "orchtui", "run", str(write_chain(tmp_path, block=True)), "--json"],
                           env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = _first_recorded_run(isolated_state)
        errors = tmp_path / "follower.err"
        with errors.open("w") as err:
            follower = subprocess.Popen([sys.executable, "-m", "orchtui", "logs", run_id, "second", "-f"],
                                        env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True)
        assert follower.stdout is not None
        assert follower.stdout.readline() == "talk 1\n"  # seen while the step still runs
        (tmp_path / "gate").unlink()
        rest = follower.stdout.read()  # to EOF: the follower ends by itself once the step ended
        assert follower.wait(timeout=60) == 0, errors.read_text()
        assert rest == "talk 2\ntalk 3\ntalk end\n"
    finally:
        (tmp_path / "gate").unlink(missing_ok=True)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert json.loads(out)["success"]


@pytest.mark.slow
def test_logs_follow_ends_when_the_process_running_the_step_is_killed(cli_env: dict[str, str], tmp_path: Path,
                                                                      isolated_state: Path) -> None:
    (tmp_path / "gate").touch()  # never removed: the step would run forever
    run = subprocess.Popen([sys.executable, "-m", "orchtui", "run", str(write_chain(tmp_path, block=True)),
                            "--run-id", "run-killed"], env=cli_env, cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    follower = None
    try:
        assert _first_recorded_run(isolated_state) == "run-killed"
        follower = subprocess.Popen([sys.executable, "-m", "orchtui", "logs", "run-killed", "second", "-f"],
                                    env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        assert follower.stdout is not None
        assert follower.stdout.readline() == "talk 1\n"  # the step is running
        run.kill()  # kill -9: the run's process cannot say anything
        run.wait(timeout=60)
        out, err = follower.communicate(timeout=60)  # ends by itself
    finally:
        run.kill()
        if follower is not None and follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert "run run-killed was interrupted" in err and "orchtui resume run-killed" in err
    assert "Traceback" not in err

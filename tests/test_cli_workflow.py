"""The workflow commands through the real CLI: validate, graph, workflow list, schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Every bad input of issue 2: file content, then (message fragment, line, column) expected.
BAD_INPUTS: dict[str, tuple[bytes, str, int, int]] = {
    "malformed.yaml": (b"name: x\nsteps:\n  - name: a\n   module: shell\n", "invalid YAML", 4, 4),
    "wrong_types.yaml": (b"name: x\nsteps:\n  - name: a\n    timeout: soon\n", "'timeout' must be a number or null, not a string", 4, 14),
    "empty.yaml": (b"", "the file is empty", 1, 1),
    "binary.yaml": (b"\x7fELF\x02\x01\x00\x00\x00", "the file is binary", 1, 7),
    "latin1.yaml": ("name: café\n".encode("latin-1"), "not valid UTF-8", 1, 10),
    "duplicate_keys.yaml": (b"name: x\nsteps:\n  - name: a\n    module: builtin\n    module: shell\n",
                            "duplicate key 'module' (first on line 4)", 5, 5),
    "reserved.yaml": (b"name: x\nsteps:\n  - name: params\n", "step name 'params' is a reserved word", 3, 11),
    "self_dep.yaml": (b"name: x\nsteps:\n  - name: a\n    dependencies: [a]\n", "step 'a' depends on itself", 4, 20),
    "unknown_key.yaml": (b"name: x\nsteps:\n  - name: a\n    dependecies: []\n", "unknown step key 'dependecies'", 4, 5),
    "unknown_dep.yaml": (b"name: x\nsteps:\n  - name: build\n  - name: test\n    dependencies: [buidl]\n",
                         "depends on unknown step 'buidl'", 5, 20),
    "cycle.yaml": (b"name: x\nsteps:\n  - name: a\n    dependencies: [b]\n  - name: b\n    dependencies: [a]\n",
                   "dependency cycle: a -> b -> a", 4, 20),
}
HINTS = {"unknown_key.yaml": "did you mean 'dependencies'?", "unknown_dep.yaml": "did you mean 'build'?"}


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchtui", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    for name, (content, *_rest) in BAD_INPUTS.items():
        (root / name).write_bytes(content)
    with (root / "huge.yaml").open("wb") as handle:
        handle.write(b"name: huge\nsteps:\n")
        handle.write(b"#" * (10 * 1024 * 1024))
    return root


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = dict(os.environ)
    env["ORCHTUI_DIR"] = str(tmp_path_factory.mktemp("state"))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env.pop("ORCHTUI_CONFIG", None)
    return env


@pytest.fixture(scope="module")
def validate_all(bad_dir: Path, module_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One validate run over every bad file (each problem line names its file)."""
    files = [str(bad_dir / name) for name in [*BAD_INPUTS, "huge.yaml"]]
    return run_cli("validate", *files, env=module_env)


def test_validate_exits_1_without_traceback(validate_all: subprocess.CompletedProcess[str]) -> None:
    assert validate_all.returncode == 1
    assert_clean(validate_all)
    assert validate_all.stdout.count(": invalid (") == len(BAD_INPUTS) + 1


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_each_bad_input_has_message_and_location(name: str, bad_dir: Path, validate_all: subprocess.CompletedProcess[str]) -> None:
    _content, fragment, line, column = BAD_INPUTS[name]
    location = f"{bad_dir / name}:{line}:{column}: "
    matching = [ln for ln in validate_all.stdout.splitlines() if ln.startswith(location)]
    assert any(fragment in ln for ln in matching), (location, validate_all.stdout)
    if name in HINTS:
        assert any(HINTS[name] in ln for ln in matching)


def test_ten_megabyte_file(bad_dir: Path, validate_all: subprocess.CompletedProcess[str]) -> None:
    assert f"{bad_dir / 'huge.yaml'}: the file is 10.0 MB; workflow files may be at most 10 MB" in validate_all.stdout


def test_single_bad_file_exit_code_and_json(bad_dir: Path, module_env: dict[str, str]) -> None:
    result = run_cli("validate", str(bad_dir / "cycle.yaml"), "--json", env=module_env)
    assert result.returncode == 1
    assert_clean(result)
    data = json.loads(result.stdout)
    assert data["success"] is False
    (entry,) = data["files"]
    assert entry["valid"] is False and entry["problems"][0]["line"] == 4
    assert entry["problems"][0]["message"] == "dependency cycle: a -> b -> a"


def test_validate_bundled_workflows_ok(workflows_dir: Path, module_env: dict[str, str]) -> None:
    files = sorted(str(p) for p in workflows_dir.glob("*.yaml"))
    result = run_cli("validate", *files, "--json", env=module_env)
    assert result.returncode == 0, result.stdout
    data = json.loads(result.stdout)
    assert data["success"] is True and len(data["files"]) == len(files) >= 4


def test_graph_formats(workflows_dir: Path, module_env: dict[str, str]) -> None:
    demo = str(workflows_dir / "demo.yaml")
    mermaid = run_cli("graph", demo, env=module_env)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart TD\n")
    assert '    n0["start"]' in mermaid.stdout and "    n0 --> n1" in mermaid.stdout
    dot = run_cli("graph", demo, "--format", "dot", env=module_env)
    assert dot.returncode == 0 and dot.stdout.startswith('digraph "demo" {')
    levels = run_cli("graph", demo, "--format", "levels", "--json", env=module_env)
    data = json.loads(levels.stdout)
    assert data["levels"] == [["start"], ["fetch_a", "fetch_b", "fetch_c"], ["combine"], ["check", "notify"], ["finish"]]
    text = run_cli("graph", demo, "--format", "levels", env=module_env)
    assert text.stdout.splitlines()[1] == "level 1: fetch_a, fetch_b, fetch_c"


def test_graph_of_invalid_file_and_bad_usage(bad_dir: Path, module_env: dict[str, str]) -> None:
    result = run_cli("graph", str(bad_dir / "cycle.yaml"), env=module_env)
    assert result.returncode == 1 and "dependency cycle: a -> b -> a" in result.stderr
    assert_clean(result)
    usage = run_cli("graph", str(bad_dir / "cycle.yaml"), "--format", "png", env=module_env)
    assert usage.returncode == 2


def test_workflow_list_with_invalid_file(tmp_path: Path, workflows_dir: Path, module_env: dict[str, str]) -> None:
    (tmp_path / "demo.yaml").write_bytes((workflows_dir / "demo.yaml").read_bytes())
    (tmp_path / "broken.yaml").write_text("name: x\nsteps: 3\n")
    result = run_cli("workflow", "list", "--dir", str(tmp_path), "--json", env=module_env)
    assert result.returncode == 0
    entries = {Path(e["file"]).name: e for e in json.loads(result.stdout)["workflows"]}
    assert entries["demo.yaml"]["valid"] and entries["demo.yaml"]["steps"] == 8
    assert not entries["broken.yaml"]["valid"] and "'steps' must be a list" in entries["broken.yaml"]["error"]
    plain = run_cli("workflow", "list", env=module_env, cwd=tmp_path)  # default: ./workflows (missing here)
    assert plain.returncode == 0 and "no workflow files" in plain.stdout


def test_workflow_list_default_directory(module_env: dict[str, str]) -> None:
    result = run_cli("workflow", "list", env=module_env, cwd=REPO)
    assert result.returncode == 0
    assert "demo" in result.stdout and "data_pipeline" in result.stdout


def test_schema_command(tmp_path: Path, module_env: dict[str, str], workflows_dir: Path) -> None:
    out = tmp_path / "schema.json"
    result = run_cli("schema", "--output", str(out), env=module_env)
    assert result.returncode == 0
    assert json.loads(out.read_text()) == json.loads((workflows_dir / "orchtui.schema.json").read_text())
    printed = run_cli("schema", env=module_env)
    assert json.loads(printed.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("command", [["validate"], ["graph"], ["workflow"], ["workflow", "list"], ["schema"]])
def test_every_command_has_help(command: list[str], module_env: dict[str, str]) -> None:
    result = run_cli(*command, "--help", env=module_env)
    assert result.returncode == 0 and "Usage:" in result.stdout


def test_unwritable_schema_output_and_missing_list_dir_are_one_clear_line(tmp_path: Path, module_env: dict[str, str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    schema = run_cli("schema", "--output", str(blocker / "schema.json"), env=module_env)
    assert schema.returncode == 1
    assert_clean(schema)
    assert "[Errno" not in schema.stderr
    assert schema.stderr.startswith(f"error: {blocker / 'schema.json'}: cannot write") and schema.stderr.count("\n") == 1
    listing = run_cli("workflow", "list", "--dir", str(tmp_path / "nowhere"), env=module_env)
    assert listing.returncode == 1
    assert_clean(listing)
    assert "nowhere" in listing.stderr and "does not exist" in listing.stderr


def test_validate_checks_a_resources_file_as_a_resource_config(tmp_path: Path, module_env: dict[str, str]) -> None:
    good = tmp_path / "ok" / "resources.yaml"
    good.parent.mkdir()
    good.write_text("resources:\n  - {id: deploy_lock, type: lock}\n")
    bad = tmp_path / "bad" / "resources.yaml"
    bad.parent.mkdir()
    bad.write_text("resources:\n  - {id: pool, type: database, capacity: {connections: -1}}\n")
    ok = run_cli("validate", str(good), env=module_env)
    assert ok.returncode == 0 and "ok (resource config, 1 resource)" in ok.stdout
    broken = run_cli("validate", str(bad), env=module_env)
    assert broken.returncode == 1 and "positive number" in broken.stdout and "Traceback" not in broken.stderr


def test_validate_checks_resource_requirements_against_the_resources_here(tmp_path: Path,
                                                                         module_env: dict[str, str]) -> None:
    # A run here would refuse the step, so validate does too, at the step's `resources`.
    workflow = tmp_path / "gpu.yaml"
    workflow.write_text("name: gpu\nsteps:\n  - name: train\n    module: builtin\n    action: noop\n"
                        "    resources: {gpu: {count: 1}}\n")
    config = tmp_path / "config" / "resources.yaml"
    config.parent.mkdir()
    config.write_text("resources:\n  - {id: gpu, type: custom, capacity: {count: 2}}\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("resources: []\n")
    without = run_cli("validate", str(workflow), env=module_env | {"ORCHTUI_RESOURCE_CONFIG": str(empty)})
    assert without.returncode == 1, without.stdout
    assert f"{workflow}:6:16: step 'train' cannot run here: unknown resource 'gpu'" in without.stdout
    declared = run_cli("validate", str(workflow), env=module_env | {"ORCHTUI_RESOURCE_CONFIG": str(config)})
    assert declared.returncode == 0 and "ok (gpu, 1 steps)" in declared.stdout
    elsewhere = run_cli("validate", "--anywhere", str(workflow), env=module_env | {"ORCHTUI_RESOURCE_CONFIG": str(empty)})
    assert elsewhere.returncode == 0 and "ok (gpu, 1 steps)" in elsewhere.stdout


def test_validate_graph_and_docs_take_a_workflow_name(workflows_dir: Path, module_env: dict[str, str]) -> None:
    env = dict(module_env, ORCHTUI_WORKFLOWS_DIR=str(workflows_dir))
    valid = run_cli("validate", "demo", "--anywhere", env=env)
    assert valid.returncode == 0 and "demo.yaml: ok (demo," in valid.stdout
    graph = run_cli("graph", "demo", "--format", "levels", env=env)
    assert graph.returncode == 0 and graph.stdout.startswith("level 0:")
    docs = run_cli("docs", "demo", env=env)
    assert docs.returncode == 0 and docs.stdout.startswith("# Workflow `demo`")
    unknown = run_cli("validate", "dmeo", env=env)
    assert unknown.returncode == 1 and "did you mean 'demo'?" in unknown.stdout
    assert_clean(unknown)


def test_a_name_two_files_define_is_refused_and_listed_as_such(tmp_path: Path, module_env: dict[str, str]) -> None:
    text = "name: same\nsteps:\n  - {name: s, module: builtin, action: echo, parameters: {message: %s}}\n"
    (tmp_path / "a.yaml").write_text(text % "one")
    (tmp_path / "b.yaml").write_text(text % "two")
    env = dict(module_env, ORCHTUI_WORKFLOWS_DIR=str(tmp_path))
    refused = run_cli("run", "same", "--json", env=env, cwd=tmp_path)
    assert refused.returncode == 1 and json.loads(refused.stdout)["error_code"] == "WORKFLOW_AMBIGUOUS"
    listed = json.loads(run_cli("workflow", "list", "--json", env=env).stdout)["workflows"]
    assert [entry["also_defined_by"] for entry in listed] == [["b.yaml"], ["a.yaml"]]
    assert run_cli("run", str(tmp_path / "b.yaml"), "--no-record", env=env, cwd=tmp_path).returncode == 0

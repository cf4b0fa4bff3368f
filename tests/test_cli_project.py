"""``orchtui project …`` and ``orchtui docs`` through a real subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest


def _run(cmd: list[str], env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli(orchtui_cmd: list[str], cli_env: dict[str, str], tmp_path: Path):  # noqa: ANN201 - a small runner
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _run(orchtui_cmd, cli_env, tmp_path, *args)

    return run


@pytest.mark.slow  # a dozen CLI processes in a row
def test_project_lifecycle_through_the_cli(cli, tmp_path: Path) -> None:  # noqa: ANN001
    created = cli("project", "create", "shop", "--template", "web_application", "--description", "A shop",
                  "--author", "Ada", "--tag", "web", "--tag", "demo", "--json")
    assert created.returncode == 0, created.stderr
    project = json.loads(created.stdout)["project"]
    assert project["name"] == "shop" and project["workflows"] == ["build-and-test"] and project["tags"] == ["web", "demo"]
    assert (tmp_path / "projects" / "shop" / "README.md").is_file()

    listed = cli("project", "list", "--json")
    assert [p["name"] for p in json.loads(listed.stdout)["projects"]] == ["shop"]
    human = cli("project", "list")
    assert human.returncode == 0 and "shop" in human.stdout and "planning" in human.stdout

    milestone = cli("project", "milestone", "shop", "mvp", "--data", '{"score": 8.5}', "--json")
    assert milestone.returncode == 0, milestone.stderr
    assert json.loads(milestone.stdout)["data"] == {"score": 8.5}

    status = json.loads(cli("project", "status", "shop", "--json").stdout)
    assert status["status"] == "planning" and status["workflows"] == 1
    assert status["milestones"]["mvp"]["data"] == {"score": 8.5}
    shown = cli("project", "status", "shop")
    assert "milestone:  mvp" in shown.stdout and str(tmp_path / "projects" / "shop") in shown.stdout

    archived = cli("project", "archive", "shop")
    assert archived.returncode == 0 and "archived project shop" in archived.stdout
    again = cli("project", "archive", "shop", "--json")
    assert json.loads(again.stdout)["changed"] is False
    assert json.loads(cli("project", "list", "--json").stdout)["projects"] == []
    assert [p["status"] for p in json.loads(cli("project", "list", "--all", "--json").stdout)["projects"]] == ["archived"]


def test_run_with_project_runs_its_workflow_in_its_directory_and_counts_it(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("project", "create", "demo").returncode == 0
    readme = (tmp_path / "projects" / "demo" / "README.md").read_text(encoding="utf-8")
    assert "orchtui run --project demo hello" in readme  # what the README tells its reader to try
    ran = cli("run", "--project", "demo", "hello", "-p", "who=ada", "--json")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    assert (tmp_path / "projects" / "demo" / "out" / "hello.txt").read_text() == "hello ada\n"
    assert not (tmp_path / "out").exists()
    assert [r["run_id"] for r in json.loads(cli("runs", "--json").stdout)] == [run_id]
    status = json.loads(cli("project", "status", "demo", "--json").stdout)
    assert status["status"] == "active" and status["metrics"]["runs"] == 1
    assert status["metrics"]["last_run"]["run_id"] == run_id
    unknown = cli("run", "--project", "demo", "helo")
    assert unknown.returncode == 1 and "project 'demo' has no workflow 'helo'; did you mean 'hello'?" in unknown.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("project", "create", "../escape"), "path separator"),
        (("project", "create", "con"), "reserved"),
        (("project", "create", "café"), "use only ASCII letters"),
        (("project", "load", "nowhere"), "no project file here"),
        (("project", "create", "ok", "--template", "reserch"), "did you mean 'research'"),
        (("project", "create", "ok", "--path", "../../elsewhere"), "outside the projects directory"),
        (("project", "status", "ghost"), "no project named 'ghost'"),
        (("project", "archive", "ghost"), "no project named 'ghost'"),
        (("project", "milestone", "ghost", "m"), "no project named 'ghost'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli, tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:  # noqa: ANN001
    result = cli(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and fragment in error_lines[0]
    assert not (tmp_path / "projects").exists() or not any((tmp_path / "projects").iterdir())


def test_bad_input_with_json_is_the_spec_002_error_dict(cli) -> None:  # noqa: ANN001
    result = cli("project", "create", "a/b", "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["success"] is False and error["error_type"] == "ProjectManagementError"
    assert error["error_code"] == "INVALID_PROJECT_NAME" and error["suggestions"]


def test_existing_project_and_bad_milestone_data(cli) -> None:  # noqa: ANN001
    assert cli("project", "create", "p1").returncode == 0
    again = cli("project", "create", "p1", "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["error_code"] == "PROJECT_EXISTS"
    bad = cli("project", "milestone", "p1", "m", "--data", "{not json")
    assert bad.returncode == 1 and "not valid JSON" in bad.stderr
    not_object = cli("project", "milestone", "p1", "m", "--data", "[1, 2]")
    assert not_object.returncode == 1 and "JSON object" in not_object.stderr


def test_a_project_directory_copied_here_is_registered_with_project_load(cli, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("project", "create", "p1").returncode == 0
    (tmp_path / "projects" / "p1").rename(tmp_path / "moved")
    loaded = cli("project", "load", "moved", "--json")
    assert loaded.returncode == 0 and json.loads(loaded.stdout)["project"]["path"] == str(tmp_path / "moved")
    listed = json.loads(cli("project", "list", "--json").stdout)["projects"]
    assert [(p["name"], p["path"]) for p in listed] == [("p1", str(tmp_path / "moved"))]


def test_creating_over_an_unregistered_project_directory_says_how_to_load_it(cli, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "projects" / "p2").mkdir(parents=True)
    refused = cli("project", "create", "p2")
    assert refused.returncode == 1 and "`orchtui project load " in refused.stderr


def test_templates_command(cli) -> None:  # noqa: ANN001
    result = cli("project", "templates", "--json")
    assert result.returncode == 0
    names = [t["name"] for t in json.loads(result.stdout)["templates"]]
    assert names == ["ai_analysis", "custom", "data_pipeline", "documentation", "ml_model", "research", "web_application"]


def test_a_broken_user_template_is_listed_as_broken_beside_the_others(orchtui_cmd: list[str], cli_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    (templates / "broken").mkdir(parents=True)
    (templates / "broken" / "template.yaml").write_text("description: [unclosed\n", encoding="utf-8")
    config = tmp_path / "orchtui.yaml"
    config.write_text(f"templates_dir: {templates}\n", encoding="utf-8")
    env = dict(cli_env, ORCHTUI_CONFIG=str(config))
    listed = _run(orchtui_cmd, env, tmp_path, "project", "templates")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 8 and lines[0].startswith("ai_analysis ")
    assert "broken" in lines[-1] and "(broken: " in lines[-1] and "not valid YAML" in lines[-1]
    data = json.loads(_run(orchtui_cmd, env, tmp_path, "project", "templates", "--json").stdout)
    assert len(data["templates"]) == 7 and [b["name"] for b in data["broken"]] == ["broken"]


WORKFLOW = """\
name: docs-demo
description: Shows the docs command.
params:
  who: {default: world, description: Whom to greet}
steps:
  - name: greet
    action: echo
    parameters: {message: "hi {{ params.who }}"}
  - name: rest
    action: sleep
    parameters: {seconds: 0}
    dependencies: [greet]
"""


def test_docs_command(cli, tmp_path: Path) -> None:  # noqa: ANN001
    source = tmp_path / "demo.yaml"
    source.write_text(WORKFLOW, encoding="utf-8")
    printed = cli("docs", str(source))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("# Workflow `docs-demo`")
    assert "| `who` |" in printed.stdout and "| 2 | `rest` | `builtin.sleep` | `greet` |" in printed.stdout
    assert "```mermaid" in printed.stdout
    written = cli("docs", str(source), "--output", "out/demo.md", "--json")
    assert json.loads(written.stdout)["output"] == "out/demo.md"
    assert (tmp_path / "out" / "demo.md").read_text(encoding="utf-8") == printed.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: b\nsteps:\n  - name: a\n    dependencies: [a]\n", encoding="utf-8")
    failed = cli("docs", str(broken))
    assert failed.returncode == 1 and "broken.yaml" in failed.stderr and "Traceback" not in failed.stderr


def test_docs_output_over_a_workflow_file_needs_force(cli, tmp_path: Path) -> None:  # noqa: ANN001
    source = tmp_path / "demo.yaml"
    source.write_text(WORKFLOW, encoding="utf-8")
    other = tmp_path / "other.yaml"
    other.write_text("name: other\nsteps:\n  - name: a\n", encoding="utf-8")
    refused = cli("docs", str(source), "-o", str(other))
    assert refused.returncode == 1 and "looks like a workflow file" in refused.stderr and "--force" in refused.stderr
    assert other.read_text(encoding="utf-8").startswith("name: other")
    itself = cli("docs", str(source), "-o", str(source), "--force")
    assert itself.returncode == 1 and "is the file of workflow 'docs-demo' itself" in itself.stderr
    assert source.read_text(encoding="utf-8") == WORKFLOW
    assert cli("docs", str(source), "-o", str(other), "--force").returncode == 0
    assert other.read_text(encoding="utf-8").startswith("# Workflow `docs-demo`")

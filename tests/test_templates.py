"""The built-in templates: each scaffolds a complete project whose workflows validate and run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Settings, load_settings
from core.documentation_generator import BUILTIN_TEMPLATES_DIR, DOC_FILES, find_placeholders
from core.models import ProjectType
from core.project_manager import ProjectManager
from core.project_templates import SCAFFOLD_DIRS, find_template, list_templates, load_template, template_workflows
from core.store import Store
from core.workflow_file import find_workflow_files, load_workflow

# What each template's first workflow leaves in the project directory: proof that its
# shell steps ran with the project directory as their working directory.
ARTIFACTS = {
    "ai_analysis": "reports/summary.txt",
    "web_application": "dist/MANIFEST-dev.txt",
    "data_pipeline": "data/warehouse/merged.csv",
    "ml_model": "artifacts/metrics.txt",
    "documentation": "site/index.md",
    "research": "results/report.md",
    "custom": "out/hello.txt",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(cwd=tmp_path)


@pytest.fixture
def pm(settings: Settings) -> Iterator[ProjectManager]:
    with Store.open(settings) as store, ProjectManager(settings=settings, store=store) as manager:
        yield manager


def test_one_template_per_project_type() -> None:
    assert list_templates() == sorted(ProjectType.choices())
    assert sorted(ARTIFACTS) == sorted(ProjectType.choices())
    for name in list_templates():
        template = find_template(name)
        assert template.type == ProjectType(name) and template.builtin
        assert template.description and template.workflows


@pytest.mark.parametrize("name", sorted(ProjectType.choices()))
def test_template_sources_are_sound(name: str) -> None:
    directory = BUILTIN_TEMPLATES_DIR / name
    template = load_template(directory, builtin=True)
    for sub in ("src", "tests", "config", "docs", "workflows"):
        assert any((directory / sub).iterdir()), f"{name}/{sub} is empty"
    for doc in DOC_FILES:
        assert find_placeholders((directory / doc).read_text(encoding="utf-8")), f"{name}/{doc} uses no variables"
    # Scaffolded Python stays valid Python before rendering, so linters can read the templates.
    for source in directory.rglob("*.py"):
        ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    names = template_workflows(template)
    assert names == [load_workflow(f).name for f in find_workflow_files(directory / "workflows")]
    for file in find_workflow_files(directory / "workflows"):
        workflow = load_workflow(file)
        assert workflow.description and len(workflow.steps) >= 3
        assert {s.module for s in workflow.steps} <= {"builtin", "shell"}


@pytest.mark.parametrize("name", sorted(ProjectType.choices()))
def test_every_template_creates_a_project_whose_workflows_run(pm: ProjectManager, name: str) -> None:
    project = pm.create_project(f"{name}-demo", name, description=f"Demo of {name}.", author="Tester", tags=["demo"])
    root = Path(project.path)
    assert project.type == ProjectType(name) and project.template == name
    for sub in SCAFFOLD_DIRS:
        assert (root / sub).is_dir()
    assert (root / "project.yaml").is_file()
    for doc in DOC_FILES:
        text = (root / doc).read_text(encoding="utf-8")
        assert "{{" not in text and "}}" not in text
        assert f"{name}-demo" in text or project.description in text or "Demo" in text
    assert f"Demo of {name}." in (root / "README.md").read_text(encoding="utf-8")
    for source in [*(root / "src").rglob("*.py"), *(root / "tests").rglob("*.py")]:
        ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        assert "{{" not in source.read_text(encoding="utf-8")
    # Workflow files are copied verbatim: their {{ params.x }} references are for run time.
    assert project.workflows
    for workflow_name in project.workflows:
        result = pm.execute_project_workflow(project.name, workflow_name)
        assert result["success"] is True, result
        assert result["failed_steps"] == [] and result["executed_steps"] >= 3
    assert (root / ARTIFACTS[name]).is_file()
    status = pm.get_project_status(project.name)
    assert status is not None and status["metrics"]["runs"] == len(project.workflows)


def test_ai_analysis_accepts_the_spec_002_parameters(pm: ProjectManager) -> None:
    pm.create_project("chatbot-analysis", template_name="ai_analysis", description="AI analysis of chatbot conversations")
    result = pm.execute_project_workflow(
        "chatbot-analysis", "ai-analysis", data_path="./conversations", focus_areas=["sentiment", "intent", "quality"]
    )
    assert result["success"] is True, result
    assert result["results"]["summarize_focus"] == ["sentiment", "intent", "quality"]
    assert "./conversations" in (Path(pm.get_project("chatbot-analysis").path) / "reports" / "summary.txt").read_text()  # type: ignore[union-attr]

"""ProjectManager: creation, bad input, project.yaml round trip, lifecycle, milestones, runs."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from core.config import Settings, load_settings
from core.documentation_generator import TemplateError
from core.errors import ProjectManagementError, StoreError
from core.models import ProjectStatus, ProjectType
from core.project_manager import ALLOWED_TRANSITIONS, ProjectManager, validate_project_name
from core.store import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(cwd=tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as opened:
        yield opened


@pytest.fixture
def pm(settings: Settings, store: Store) -> Iterator[ProjectManager]:
    with ProjectManager(settings=settings, store=store) as manager:
        yield manager


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _user_template(root: Path, name: str = "mine", *, manifest: str | None = None, readme: str = "# {{ project_name }}\n") -> Path:
    """A minimal valid user template under ``root/name``."""
    directory = root / name
    (directory / "workflows").mkdir(parents=True)
    (directory / "template.yaml").write_text(manifest or "description: A user template.\n", encoding="utf-8")
    (directory / "README.md").write_text(readme, encoding="utf-8")
    (directory / "AGENTS.md").write_text("agents of {{ project_name }}\n", encoding="utf-8")
    (directory / "SPEC.md").write_text("spec of {{ project_name }}\n", encoding="utf-8")
    (directory / "workflows" / "w.yaml").write_text("name: w\nsteps:\n  - name: a\n    action: noop\n", encoding="utf-8")
    return directory


# ------------------------------------------------------------------ creation


def test_spec_004_example(pm: ProjectManager) -> None:
    project = pm.create_project(name="my_ai_project", template_name="ai_analysis", description="AI-powered code analysis project")
    assert project.type == ProjectType.AI_ANALYSIS and project.status == ProjectStatus.PLANNING
    status = pm.get_project_status("my_ai_project")
    assert status is not None
    for key in ("name", "status", "type", "version", "path", "workflows", "active_workflows", "required_modules",
                "created_at", "updated_at", "milestones", "metrics"):
        assert key in status
    assert status["workflows"] == 1 and status["active_workflows"] == 0
    assert status["created_at"].endswith("+00:00") and status["status"] == "planning"


def test_spec_002_example_and_call_forms(pm: ProjectManager, settings: Settings) -> None:
    web = pm.create_project("web-app-analysis", template_name="web_application",
                            description="Analysis of web application code", author="Development Team")
    assert Path(web.path) == settings.projects_dir.resolve() / "web-app-analysis"
    assert web.author == "Development Team" and web.workflows == ["build-and-test"]
    by_alias = pm.create_project("by-alias", template="research", tags=["x", "x", "y"])
    assert by_alias.template == "research" and by_alias.tags == ["x", "y"]
    by_type = pm.create_project("by-type", type=ProjectType.ML_MODEL)
    assert by_type.template == "ml_model" and by_type.type == ProjectType.ML_MODEL
    plain = pm.create_project("plain")
    assert plain.template == "custom"
    assert [p.name for p in pm.list_projects()] == ["by-alias", "by-type", "plain", "web-app-analysis"]


def test_relative_path_inside_projects_dir(pm: ProjectManager, settings: Settings) -> None:
    project = pm.create_project("nested", "custom", "group/nested-dir")
    assert Path(project.path) == settings.projects_dir.resolve() / "group" / "nested-dir"
    assert (Path(project.path) / "project.yaml").is_file()


def test_absolute_path_is_taken_as_given(pm: ProjectManager, tmp_path: Path) -> None:
    project = pm.create_project("elsewhere", "custom", tmp_path / "somewhere" / "else")
    assert (tmp_path / "somewhere" / "else" / "README.md").is_file()
    assert pm.get_project("elsewhere") is not None and project.path == str(tmp_path / "somewhere" / "else")


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("../escape", "path separator"),
        ("..", "'..'"),
        ("x..y", "'..'"),
        (".", "starts with '.'"),
        (".hidden", "starts with '.'"),
        ("-rf", "starts with '-'"),
        ("con", "reserved"),
        ("NUL", "reserved"),
        ("com1.txt", "reserved"),
        ("a" * 65, "65 characters"),
        ("with space", "' '"),
        ("semi;colon", "';'"),
        ("tab\tname", "'\\t'"),
        ("trailing.", "ends with '.'"),
        (None, "not a string"),
    ],
)
def test_bad_names_are_refused_and_write_nothing(pm: ProjectManager, settings: Settings, tmp_path: Path, name: object, fragment: str) -> None:
    before = _entries(tmp_path)
    with pytest.raises(ProjectManagementError) as info:
        pm.create_project(name, "custom")  # type: ignore[arg-type]
    assert fragment in info.value.message
    assert info.value.error_code == "INVALID_PROJECT_NAME"
    assert _entries(tmp_path) == before and not settings.projects_dir.exists()


def test_name_validator_accepts_ordinary_names() -> None:
    for name in ("a", "my_ai_project", "web-app.v2", "A1", "x" * 64):
        assert validate_project_name(name) == name


def test_relative_path_cannot_leave_projects_dir(pm: ProjectManager, tmp_path: Path) -> None:
    with pytest.raises(ProjectManagementError, match="outside the projects directory"):
        pm.create_project("ok-name", "custom", "../outside")
    with pytest.raises(ProjectManagementError, match="outside the projects directory"):
        pm.create_project("ok-name", "custom", "a/../../outside")
    assert not (tmp_path / "outside").exists()


def test_symlink_in_projects_dir_does_not_lead_outside(pm: ProjectManager, settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    settings.projects_dir.mkdir()
    (settings.projects_dir / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ProjectManagementError):
        pm.create_project("evil", "custom")
    assert _entries(outside) == []


def test_existing_directory_is_refused_and_untouched(pm: ProjectManager, settings: Settings) -> None:
    existing = settings.projects_dir / "taken"
    existing.mkdir(parents=True)
    (existing / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ProjectManagementError, match="already exists"):
        pm.create_project("taken", "custom")
    assert _entries(existing) == ["keep.txt"]
    assert pm.get_project("taken") is None


def test_duplicate_project_name_is_refused(pm: ProjectManager, tmp_path: Path) -> None:
    pm.create_project("twice", "custom")
    with pytest.raises(ProjectManagementError, match="already exists") as info:
        pm.create_project("twice", "research", tmp_path / "other")
    assert info.value.error_code == "PROJECT_EXISTS"
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"tags": ["multi\nline"]}, "the project tag 'multi\\nline' holds a line break; keep it to one line of text"),
    ({"author": "Eve\x1b[31m"}, "the project author 'Eve\\x1b[31m' holds the control character '\\x1b'; remove it"),
    ({"description": "a\x00b"}, "the project description 'a\\x00b' holds the control character '\\x00'"),
    ({"description": "a\udcffb"}, "the project description 'a\\udcffb' is not valid UTF-8 text"),
])
def test_control_characters_in_text_fields_are_refused_and_write_nothing(
        pm: ProjectManager, settings: Settings, fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ProjectManagementError) as info:
        pm.create_project("p", "custom", **fields)  # type: ignore[arg-type]
    assert info.value.message == fragment if fragment.endswith("remove it") else fragment in info.value.message
    assert _entries(settings.projects_dir) == [] and pm.list_projects() == []


def test_a_multi_line_description_and_pipes_in_author_and_tags_are_kept_as_written(pm: ProjectManager) -> None:
    project = pm.create_project("p", "custom", description="one\ntwo", author="Eve | Mallory", tags=["x|y"])
    readme = (Path(project.path) / "README.md").read_text(encoding="utf-8")
    assert "- **author:** Eve | Mallory\n" in readme and "- **tags:** x|y\n" in readme
    assert project.description == "one\ntwo"


@pytest.mark.parametrize("name", ["true", "null", "off", "1.0", "0x1F", "012", "1_000"])
@pytest.mark.parametrize(("template", "config", "key"), [
    ("custom", "settings.yaml", "name"), ("ai_analysis", "analysis.yaml", "project")])
def test_config_files_read_the_project_name_back_as_a_string(pm: ProjectManager, name: str, template: str,
                                                             config: str, key: str) -> None:
    project = pm.create_project(name, template)
    assert yaml.safe_load((Path(project.path) / "config" / config).read_text(encoding="utf-8"))[key] == name


def test_unknown_template_suggests_the_closest(pm: ProjectManager, settings: Settings) -> None:
    with pytest.raises(ProjectManagementError, match="did you mean 'web_application'") as info:
        pm.create_project("p", "web_aplication")
    assert info.value.error_code == "TEMPLATE_NOT_FOUND"
    assert not settings.projects_dir.exists()


def test_template_names_accept_dashes(pm: ProjectManager) -> None:
    assert pm.create_project("dashed", "data-pipeline").template == "data_pipeline"


def test_unknown_type_is_refused(pm: ProjectManager) -> None:
    with pytest.raises(ProjectManagementError, match="ai_analysis"):
        pm.create_project("p", type="spaceship")


def test_template_syntax_error_writes_nothing(settings: Settings, store: Store, tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    _user_template(templates, readme="# {{ project_name }}\n\nbroken {{ description\n")
    manager = ProjectManager(settings=settings, store=store, templates_dir=templates)
    with pytest.raises(TemplateError) as info:
        manager.create_project("p", "mine")
    assert "mine/README.md:3:8" in info.value.message and "not closed" in info.value.message
    assert not settings.projects_dir.exists() and manager.get_project("p") is None


def test_missing_variables_are_all_listed(settings: Settings, store: Store, tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    directory = _user_template(templates, readme="{{ client }} and {{ budget }}\n")
    (directory / "src").mkdir()
    (directory / "src" / "main.py").write_text("# {{ deadline }} {{ client }}\n", encoding="utf-8")
    manager = ProjectManager(settings=settings, store=store, templates_dir=templates)
    with pytest.raises(TemplateError) as info:
        manager.create_project("p", "mine")
    assert info.value.details["missing"] == ["budget", "client", "deadline"]
    assert info.value.details["files"] == ["README.md", "src/main.py"]
    assert "budget, client, deadline" in info.value.message
    assert not settings.projects_dir.exists()
    project = manager.create_project("p", "mine", variables={"client": "ACME", "budget": 10, "deadline": "May"})
    assert (Path(project.path) / "README.md").read_text(encoding="utf-8") == "ACME and 10\n"
    assert (Path(project.path) / "src" / "main.py").read_text(encoding="utf-8") == "# May ACME\n"


@pytest.mark.parametrize(
    ("manifest", "fragment"),
    [
        ("description: x\nworkflow: [w]\n", "did you mean 'workflows'"),
        ("description: x\ntype: spaceship\n", "'type' is 'spaceship'"),
        ("type: custom\n", "'description' is required"),
        ("description: x\nvariables: [a]\n", "'variables' must be a mapping"),
        ("description: x\nvariables: {bad-name: 1}\n", "must be identifiers"),
        ("description: x\nworkflows: [missing]\n", "lists workflow missing"),
        ("description: [unclosed\n", "not valid YAML at line"),
    ],
)
def test_bad_manifests_are_clear_errors(settings: Settings, store: Store, tmp_path: Path, manifest: str, fragment: str) -> None:
    templates = tmp_path / "user-templates"
    _user_template(templates, manifest=manifest)
    manager = ProjectManager(settings=settings, store=store, templates_dir=templates)
    with pytest.raises(ProjectManagementError) as info:
        manager.create_project("p", "mine")
    assert fragment in info.value.message
    assert not settings.projects_dir.exists()


def test_template_with_invalid_workflow_is_refused(settings: Settings, store: Store, tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    directory = _user_template(templates)
    (directory / "workflows" / "bad.yaml").write_text("name: bad\nsteps:\n  - name: a\n    dependencies: [nope]\n", encoding="utf-8")
    manager = ProjectManager(settings=settings, store=store, templates_dir=templates)
    with pytest.raises(ProjectManagementError, match="invalid workflow"):
        manager.create_project("p", "mine")
    assert not settings.projects_dir.exists()


def test_template_with_two_workflows_of_one_name_is_refused(settings: Settings, store: Store, tmp_path: Path) -> None:
    root = tmp_path / "user-templates"
    directory = _user_template(root, "dup")
    (directory / "workflows" / "w2.yaml").write_text("name: w\nsteps:\n  - name: b\n", encoding="utf-8")
    with ProjectManager(settings=settings, store=store, templates_dir=root) as manager:
        with pytest.raises(ProjectManagementError, match="ships two workflows named 'w': workflows/w.yaml and workflows/w2.yaml"):
            manager.create_project("p", template_name="dup")
    assert _entries(settings.projects_dir) == []


def test_template_with_symlink_is_refused(settings: Settings, store: Store, tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    directory = _user_template(templates)
    (directory / "docs").mkdir()
    (directory / "docs" / "secret").symlink_to("/etc/passwd")
    manager = ProjectManager(settings=settings, store=store, templates_dir=templates)
    with pytest.raises(ProjectManagementError, match="symbolic link"):
        manager.create_project("p", "mine")
    assert not settings.projects_dir.exists()


def test_failure_after_scaffolding_leaves_nothing_behind(settings: Settings, tmp_path: Path) -> None:
    # A store capped at its current size: the project row does not fit, as on a full disk.
    db = tmp_path / "capped" / "orchtui.db"
    Store(db).close()
    with Store(db, max_db_bytes=db.stat().st_size) as capped:
        manager = ProjectManager(settings=settings, store=capped)
        with pytest.raises(ProjectManagementError, match="nothing was created") as info:
            manager.create_project("big", "custom", description="x" * 200_000)
        assert info.value.error_code == "PROJECT_REGISTRATION_FAILED"
    assert _entries(settings.projects_dir) == []


def test_a_build_that_fails_removes_the_parent_directories_it_made(settings: Settings, store: Store,
                                                                    tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    directory = _user_template(templates, "clash")
    (directory / "config").write_text("a file where the scaffold makes a directory\n", encoding="utf-8")
    manager = ProjectManager(settings=settings, store=store, templates_dir=templates)
    with pytest.raises(ProjectManagementError, match="nothing was left behind"):
        manager.create_project("p", "clash", path=tmp_path / "deep" / "er" / "p")
    assert not (tmp_path / "deep").exists()


def test_a_projects_dir_that_is_a_file_is_named_as_the_problem(pm: ProjectManager, settings: Settings) -> None:
    settings.projects_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.projects_dir.write_text("not a directory\n", encoding="utf-8")
    with pytest.raises(ProjectManagementError) as info:
        pm.create_project("p", "custom")
    assert f"({settings.projects_dir.resolve()} is a file, not a directory)" in info.value.message


def test_a_long_path_that_fits_the_file_system_takes_a_project(pm: ProjectManager, tmp_path: Path) -> None:
    # The hidden sibling a project is built in must fit wherever the project's own name does.
    project = pm.create_project("long", "custom", tmp_path / ("d" * 245))
    assert Path(project.path).name == "d" * 245 and (Path(project.path) / "project.yaml").is_file()


def test_an_empty_template_name_is_refused_not_taken_for_custom(pm: ProjectManager) -> None:
    with pytest.raises(ProjectManagementError, match="the template name is empty"):
        pm.create_project("p", "")
    assert pm.list_projects() == []


def test_yaml_files_of_a_template_read_back_each_variables_value_and_type(settings: Settings, store: Store,
                                                                           tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    directory = _user_template(templates, "typed", manifest=(
        "description: x\nvariables:\n  schedule: '*/5 * * * *'\n  port: 8080\n  flag: 'true'\n  plain: data/out\n"))
    (directory / "config").mkdir()
    (directory / "config" / "app.yaml").write_text(
        "# settings for {{ project_name }}\nschedule: {{ schedule }}\nport: {{ port }}  # where it listens\n"
        "flag: {{ flag }}\nplain: {{ plain }}\nsources:\n  - {{ schedule }}\n", encoding="utf-8")
    with ProjectManager(settings=settings, store=store, templates_dir=templates) as manager:
        project = manager.create_project("typed", "typed", variables={"flag": "true"})
    text = (Path(project.path) / "config" / "app.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text) == {"schedule": "*/5 * * * *", "port": 8080, "flag": "true", "plain": "data/out",
                                    "sources": ["*/5 * * * *"]}
    assert "plain: data/out\n" in text and "# settings for typed\n" in text  # plain values stay as written


def test_user_templates_add_and_override(settings: Settings, store: Store, tmp_path: Path, pm: ProjectManager) -> None:
    templates = tmp_path / "user-templates"
    _user_template(templates, "mine")
    _user_template(templates, "custom", manifest="description: My own custom.\n", readme="overridden {{ project_name }}\n")
    builtin = pm.list_templates()
    assert builtin == ["ai_analysis", "custom", "data_pipeline", "documentation", "ml_model", "research", "web_application"]
    manager = ProjectManager(settings=settings, store=store, templates_dir=templates)
    assert manager.list_templates() == sorted([*builtin, "mine"])
    project = manager.create_project("over", "custom")
    assert (Path(project.path) / "README.md").read_text(encoding="utf-8") == "overridden over\n"
    assert project.workflows == ["w"]
    assert not manager.get_template("custom").builtin


# --------------------------------------------------------- project.yaml round trip


def test_project_yaml_round_trip_on_another_machine(pm: ProjectManager, tmp_path: Path) -> None:
    project = pm.create_project("travel", "research", description="Goes places", author="Ada", tags=["t"])
    pm.add_project_milestone("travel", "kickoff", {"people": 3})
    original = pm.get_project("travel")
    assert original is not None
    copied = tmp_path / "machine-b" / "travel"
    shutil.copytree(project.path, copied)
    other_settings = load_settings(cwd=tmp_path / "machine-b", env={"ORCHTUI_DIR": str(tmp_path / "machine-b" / "state")})
    with Store.open(other_settings) as other_store:
        other = ProjectManager(settings=other_settings, store=other_store)
        assert other.get_project("travel") is None
        loaded = other.load_project(copied)
        registered = other.get_project("travel")
    assert loaded.path == str(copied.resolve()) and registered is not None and registered.path == loaded.path
    expected = original.to_dict()
    for record in (loaded.to_dict(), registered.to_dict()):
        record.pop("path")
        assert record == {k: v for k, v in expected.items() if k != "path"}


def test_project_yaml_follows_every_change(pm: ProjectManager) -> None:
    project = pm.create_project("tracked", "custom")
    pm.update_project_status("tracked", "active")
    pm.add_project_milestone("tracked", "m1", {"ok": True})
    data = yaml.safe_load((Path(project.path) / "project.yaml").read_text(encoding="utf-8"))
    assert data["status"] == "active" and data["milestones"]["m1"]["data"] == {"ok": True}
    assert "path" not in data


def test_load_project_refuses_a_second_directory_with_the_same_name(pm: ProjectManager, tmp_path: Path) -> None:
    project = pm.create_project("dup", "custom")
    copy = tmp_path / "copy-of-dup"
    shutil.copytree(project.path, copy)
    with pytest.raises(ProjectManagementError, match="different project named 'dup'"):
        pm.load_project(copy)
    assert pm.load_project(project.path).path == project.path  # reloading the same one is fine


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no project file"),
        ("name: [unclosed\n", "project.yaml:2:1: invalid YAML"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("name: p\nflavour: odd\n", "project.yaml:2: field 'flavour' is not a field of a project"),
        ("name: p\nstatus: sleeping\n", "project.yaml:2: field 'status' must be one of planning, active"),
        ("name: ../escape\n", "path separator"),
        ("name: p\nmilestones: [1, 2]\n", "project.yaml:2: field 'milestones' must be a mapping of names to mappings"),
        ("name: p\nworkflows: [a, null]\n", "field 'workflows' must be a list of strings; item 2 is null"),
        ("name: p\nrequired_modules: abc\n", "field 'required_modules' must be a list of strings, not 'abc'"),
        ("name: p\nconfig: []\n", "field 'config' must be a mapping, not a list"),
        ("name: p\nmetadata: {when: 2024-01-01}\n", "field 'metadata' entry 'when' holds datetime.date(2024, 1, 1)"),
        ("name: p\ncreated_at: yesterday\n", "field 'created_at' must be a number, not 'yesterday'"),
        ("name: p\nupdated_at: .nan\n", "field 'updated_at' must be a finite number, not nan;"),
        ("name: p\ncreated_at: -99999999999999\n", "field 'created_at' is not a time between the years 1970 and 9999"),
        ("name: p\nversion: 1.0\n", "field 'version' must be a string, not 1.0 (quote it to make it a string)"),
        ("description: no name\n", "field 'name' must be a string, not null"),
        ("name: p\nname: q\n", "project.yaml:2:1: duplicate key 'name'"),
        ("a: &a [1, 2]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
                                   for i in range(6)) + "name: p\nmetadata: {x: *g}\n", "its aliases expand the document"),
    ],
)
def test_load_project_bad_files(pm: ProjectManager, tmp_path: Path, content: str | None, fragment: str) -> None:
    directory = tmp_path / "loaded"
    directory.mkdir()
    if content is not None:
        (directory / "project.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(ProjectManagementError) as info:
        pm.load_project(directory)
    assert fragment in info.value.message
    assert pm.list_projects(include_archived=True) == []


def test_a_stored_project_record_that_cannot_be_read_hides_no_other(pm: ProjectManager, store: Store) -> None:
    pm.create_project("good", "custom")
    broken = pm.create_project("broken", "custom")
    broken.workflows = [None]  # type: ignore[list-item]  # what an unchecked older orchtui stored
    store.save_project(broken)
    assert [p.name for p in pm.list_projects()] == ["good"]
    with pytest.raises(StoreError, match="the record of project 'broken' cannot be read: field 'workflows'"):
        store.get_project("broken")


def test_of_processes_creating_one_name_in_different_directories_exactly_one_succeeds(
        settings: Settings, tmp_path: Path) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(6, timeout=60)

    def create(index: int) -> None:
        try:
            with Store.open(settings) as own_store, ProjectManager(settings=settings, store=own_store) as own:
                start.wait()
                own.create_project("race", "custom", path=tmp_path / f"race-{index}")
                outcomes.append("created")
        except ProjectManagementError as exc:
            outcomes.append(exc.error_code)
        except BaseException as exc:
            start.abort()
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["PROJECT_EXISTS"] * 5 + ["created"]
    with Store.open(settings) as reader:
        registered = [Path(p.path).name for p in reader.list_projects()]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("race-")] == registered


# ------------------------------------------------------------------ lifecycle


@pytest.mark.parametrize("start", [s for s in ProjectStatus if s != ProjectStatus.ARCHIVED])
def test_every_transition_is_checked(pm: ProjectManager, start: ProjectStatus) -> None:
    # Reach ``start`` through allowed steps, then try every target from there.
    paths = {
        ProjectStatus.PLANNING: [],
        ProjectStatus.ACTIVE: ["active"],
        ProjectStatus.PAUSED: ["active", "paused"],
        ProjectStatus.COMPLETED: ["active", "completed"],
        ProjectStatus.FAILED: ["failed"],
    }
    for target in ProjectStatus:
        name = f"p-{start.value}-{target.value}"
        pm.create_project(name, "custom")
        for step in paths[start]:
            pm.update_project_status(name, step)
        if target == start or target in ALLOWED_TRANSITIONS[start]:
            assert pm.update_project_status(name, target).status == target
        else:
            with pytest.raises(ProjectManagementError, match=f"cannot go from {start.value} to {target.value}"):
                pm.update_project_status(name, target)
            assert pm.get_project(name).status == start  # type: ignore[union-attr]


def test_archived_needs_unarchive(pm: ProjectManager) -> None:
    pm.create_project("old", "custom")
    pm.update_project_status("old", "active")
    pm.update_project_status("old", "paused")
    assert pm.archive_project("old") is True
    assert pm.archive_project("old") is False
    with pytest.raises(ProjectManagementError, match="unarchive_project"):
        pm.update_project_status("old", "active")
    assert [p.name for p in pm.list_projects()] == []
    assert [p.name for p in pm.list_projects(include_archived=True)] == ["old"]
    assert pm.unarchive_project("old").status == ProjectStatus.PAUSED
    with pytest.raises(ProjectManagementError, match="not archived"):
        pm.unarchive_project("old")


def test_unknown_status_and_project(pm: ProjectManager) -> None:
    pm.create_project("here", "custom")
    with pytest.raises(ProjectManagementError, match="not known"):
        pm.update_project_status("here", "sleeping")
    with pytest.raises(ProjectManagementError, match="did you mean 'here'"):
        pm.update_project_status("hre", "active")
    assert pm.get_project("nope") is None and pm.get_project_status("nope") is None


# ------------------------------------------------------------------ milestones


def test_milestones(pm: ProjectManager, tmp_path: Path) -> None:
    pm.create_project("chatbot-analysis", "ai_analysis")
    pm.add_project_milestone("chatbot-analysis", "initial_analysis_complete", {"quality_score": 8.5, "insights_generated": 23})
    pm.add_project_milestone("chatbot-analysis", "bare")
    status = pm.get_project_status("chatbot-analysis")
    assert status is not None
    assert status["milestones"]["initial_analysis_complete"]["data"] == {"quality_score": 8.5, "insights_generated": 23}
    assert status["milestones"]["bare"]["data"] == {}
    assert status["milestones"]["bare"]["achieved_at"].endswith("+00:00")
    with pytest.raises(ProjectManagementError, match="JSON-like"):
        pm.add_project_milestone("chatbot-analysis", "odd", {"path": tmp_path})
    with pytest.raises(ProjectManagementError, match="mapping"):
        pm.add_project_milestone("chatbot-analysis", "odd", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ProjectManagementError, match="milestone name"):
        pm.add_project_milestone("chatbot-analysis", "  ")
    pm.archive_project("chatbot-analysis")
    with pytest.raises(ProjectManagementError, match="archived"):
        pm.add_project_milestone("chatbot-analysis", "late")


# ------------------------------------------------------------------- workflows


def test_execute_project_workflow_runs_in_the_project(pm: ProjectManager, store: Store) -> None:
    project = pm.create_project("runner", "custom")
    result = pm.execute_project_workflow("runner", "hello", who="orchtui")
    assert result["success"] is True, result
    assert result["project"] == "runner" and result["workflow"] == "hello"
    assert (Path(project.path) / "out" / "hello.txt").read_text(encoding="utf-8").strip() == "hello orchtui"
    status = pm.get_project_status("runner")
    assert status is not None and status["status"] == "active"
    assert status["metrics"]["runs"] == 1 and status["metrics"]["successful_runs"] == 1
    assert status["metrics"]["last_run"]["workflow"] == "hello"
    store.flush()
    assert [r.run_id for r in store.list_runs(workflow="hello")] == [result["run_id"]]


def test_failed_project_run_is_counted(pm: ProjectManager) -> None:
    project = pm.create_project("breaks", "documentation")
    (Path(project.path) / "docs" / "empty.md").write_text("", encoding="utf-8")
    result = pm.execute_project_workflow("breaks", "build-docs")
    assert result["success"] is False and "check_pages" in result["failed_steps"]
    assert pm.get_project_status("breaks")["metrics"]["failed_runs"] == 1  # type: ignore[index]


def test_execute_project_workflow_errors(pm: ProjectManager) -> None:
    pm.create_project("wf", "custom")
    with pytest.raises(ProjectManagementError, match="did you mean 'hello'"):
        pm.execute_project_workflow("wf", "helo")
    pm.archive_project("wf")
    with pytest.raises(ProjectManagementError, match="archived"):
        pm.execute_project_workflow("wf", "hello")
    with pytest.raises(ProjectManagementError, match="no project named"):
        pm.execute_project_workflow("ghost", "hello")


def test_generate_docs_regenerates_from_stored_variables(pm: ProjectManager) -> None:
    project = pm.create_project("regen", "ml_model", description="first")
    readme = Path(project.path) / "README.md"
    readme.write_text("edited", encoding="utf-8")
    written = pm.generate_docs("regen", {"target_metric": "f1"})
    assert readme in written and "judged on f1" in readme.read_text(encoding="utf-8")


def test_regenerated_docs_say_what_the_created_ones_said_when_a_template_sets_project_facts(
        settings: Settings, store: Store, tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    _user_template(templates, "pushy", manifest="description: x\nvariables:\n  project_name: EVIL\n  description: forced\n",
                   readme="# {{ project_name }}: {{ description }}\n")
    with ProjectManager(settings=settings, store=store, templates_dir=templates) as manager:
        project = manager.create_project("real", "pushy", description="the real one")
        readme = Path(project.path) / "README.md"
        created = readme.read_text(encoding="utf-8")
        manager.generate_docs("real")
        assert readme.read_text(encoding="utf-8") == created == "# real: the real one\n"


def test_active_workflows_counts_runs_in_flight(settings: Settings, store: Store, tmp_path: Path) -> None:
    templates = tmp_path / "user-templates"
    directory = _user_template(templates)
    # The step waits for a file the test creates, so the run is in flight for as long as needed.
    (directory / "workflows" / "w.yaml").write_text(
        "name: w\nsteps:\n  - name: gate\n    module: shell\n    action: run\n    timeout: 60\n"
        "    parameters: {command: 'while [ ! -f go ]; do sleep 0.02; done; echo through'}\n",
        encoding="utf-8",
    )
    manager = ProjectManager(settings=settings, store=store, templates_dir=templates)
    project = manager.create_project("gated", "mine")
    results: list[dict[str, object]] = []
    runner = threading.Thread(target=lambda: results.append(manager.execute_project_workflow("gated", "w")))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while manager.get_project_status("gated")["active_workflows"] != 1:  # type: ignore[index]
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.01)
    finally:
        (Path(project.path) / "go").touch()
        runner.join(60)
    manager.close()
    assert results and results[0]["success"] is True and results[0]["results"] == {"gate": "through"}
    assert manager.get_project_status("gated")["active_workflows"] == 0  # type: ignore[index]

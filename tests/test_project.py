"""project.yml: it loads as spaCy reads it, and every config and script its commands
name exists, for the default variables and for the transformer ensemble members."""

import re
from pathlib import Path

import pytest
from spacy.cli.project.run import load_project_config

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("overrides", [{}, {"vars.members": "ensemble_members_trf"}])
def test_project_commands_name_existing_configs_and_scripts(overrides):
    project = load_project_config(ROOT, overrides=overrides)
    commands = {command["name"]: command for command in project["commands"]}
    for workflow, steps in project["workflows"].items():
        assert set(steps) <= set(commands), workflow
    named = {
        path
        for command in commands.values()
        for line in command["script"]
        for path in re.findall(r"(?:configs|scripts|benchmarks)/[\w./-]+\.(?:cfg|py)", line)
    }
    assert "configs/ensemble_members.cfg" in named or "configs/ensemble_members_trf.cfg" in named
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert missing == []

"""docs/settings.md lists every setting the code reads, and only those: it is generated from the settings classes
(scripts/settings_doc.py, `make settings-doc`), and these tests fail when the committed file and the code part."""

from __future__ import annotations

import ast

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from scripts.settings_doc import DOC, ROOT, SCANNED, SETTINGS_CLASSES, documented_variables, render
from services.portal.main import create_app


def test_the_settings_document_lists_exactly_the_settings_of_the_code() -> None:
    written, code = DOC.read_text(), render()
    missing = documented_variables(code) - documented_variables(written)
    gone = documented_variables(written) - documented_variables(code)
    assert not missing, f"settings not in docs/settings.md (run `make settings-doc`): {sorted(missing)}"
    assert not gone, f"docs/settings.md lists settings the code no longer has: {sorted(gone)}"
    assert written == code, "docs/settings.md differs from the code's settings: run `make settings-doc`"


def test_a_setting_added_to_a_class_shows_as_missing_from_the_document() -> None:
    class Added(BaseSettings):
        knob: int = Field(1, alias="CANVASS_NEW_KNOB", description="A knob added tomorrow.")

    written = documented_variables(DOC.read_text())
    assert documented_variables(render([*SETTINGS_CLASSES, ("Added", Added)])) - written == {
        "CANVASS_NEW_KNOB"
    }


def test_a_documented_setting_the_code_no_longer_has_shows_as_gone() -> None:
    without_portal = [(heading, cls) for heading, cls in SETTINGS_CLASSES if cls.__name__ != "PortalSettings"]
    gone = documented_variables(DOC.read_text()) - documented_variables(render(without_portal))
    assert "CANVASS_TILE_URL" in gone


def test_a_setting_without_a_description_is_refused() -> None:
    class Undocumented(BaseSettings):
        knob: int = Field(1, alias="CANVASS_NEW_KNOB")

    with pytest.raises(ValueError, match=r"Undocumented\.knob has no description"):
        render([*SETTINGS_CLASSES, ("Undocumented", Undocumented)])


def test_every_settings_class_of_the_project_is_in_the_generators_list() -> None:
    """A new settings class is one line in scripts/settings_doc.py's SETTINGS_CLASSES; forgetting it fails here."""
    declared = set()
    for package in SCANNED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(b) == "BaseSettings" for b in node.bases
                ):
                    declared.add(node.name)
    assert declared == {cls.__name__ for _, cls in SETTINGS_CLASSES}


def test_the_portal_refuses_a_malformed_setting_naming_it() -> None:
    with pytest.raises(ValueError, match="REGISTRY_API_PORT"):
        create_app(env={"REGISTRY_API_PORT": "eight thousand"})

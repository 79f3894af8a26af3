"""The demo's sample ontology and project, so a curator can try bulk classification at once.

The demo command (catalog) calls create_demo_project; tests use the same ontology as their
nested example.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from .models import Ontology, Project
from .services import create_project, import_ontology_json

DEMO_ONTOLOGY_NAME = "Demo photo ontology"
DEMO_PROJECT_NAME = "Demo photos"

# Labelbox-shaped, like any imported ontology: Subject → Animal → Species is the nested
# sub-question that the wizard shows only once "Animal" is chosen.
DEMO_ONTOLOGY: dict[str, Any] = {
    "tools": [],
    "classifications": [
        {
            "type": "radio",
            "name": "Subject",
            "instructions": "What is the main subject of the image?",
            "required": True,
            "scope": "global",
            "options": [
                {
                    "label": "Animal",
                    "value": "animal",
                    "options": [
                        {
                            "type": "radio",
                            "name": "Species",
                            "instructions": "Which animal?",
                            "required": True,
                            "options": [
                                {"label": "Cat", "value": "cat", "options": []},
                                {"label": "Dog", "value": "dog", "options": []},
                                {"label": "Horse", "value": "horse", "options": []},
                                {"label": "Bird", "value": "bird", "options": []},
                            ],
                        }
                    ],
                },
                {"label": "Person", "value": "person", "options": []},
                {"label": "Object", "value": "object", "options": []},
                {"label": "Scene", "value": "scene", "options": []},
            ],
        },
        {
            "type": "checklist",
            "name": "Qualities",
            "instructions": "Tick every quality that applies.",
            "required": False,
            "scope": "global",
            "options": [
                {"label": "Sharp", "value": "sharp", "options": []},
                {"label": "Blurry", "value": "blurry", "options": []},
                {"label": "Bright", "value": "bright", "options": []},
                {"label": "Dark", "value": "dark", "options": []},
            ],
        },
        {
            "type": "text",
            "name": "Notes",
            "instructions": "Anything a reviewer should know.",
            "required": False,
            "scope": "global",
            "options": [],
        },
    ],
}


@transaction.atomic
def create_demo_project(user: AbstractBaseUser | AnonymousUser | None) -> Project:
    """The demo ontology and the "Demo photos" project; running it again changes nothing."""
    ontology = Ontology.objects.filter(name=DEMO_ONTOLOGY_NAME).first()
    if ontology is None:
        ontology = import_ontology_json(DEMO_ONTOLOGY, name=DEMO_ONTOLOGY_NAME)
    project = Project.objects.filter(name=DEMO_PROJECT_NAME).first()
    if project is None:
        project = create_project(
            user,
            name=DEMO_PROJECT_NAME,
            ontology=ontology,
            description="Sample project: classify the demo photos by subject, species and quality.",
        )
    return project

"""Every bulk-classification rule, table-driven, through submit → engine (django-q2 sync)."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict
from django.test import TestCase

from catalog import selection as selection_service
from classification import services
from classification.models import BulkClassificationJob, JobSkippedRow, Notification
from projects.models import Answer, AnswerOption, Batch, Ontology, Project, ProjectDataRow, Question
from projects.services import add_rows_to_project, create_project, set_answers

STEP = ProjectDataRow.Step


@pytest.fixture
def onto(demo_project: Project) -> dict[str, Any]:
    q = {x.name: x for x in Question.objects.filter(ontology=demo_project.ontology)}
    opt = {(o.question.name, o.value): o.pk for x in q.values() for o in x.options.all()}
    return {"project": demo_project, "q": q, "opt": opt}


def ans(onto: dict[str, Any], **values: Any) -> dict[str, Any]:
    """answers by question name: Subject="animal", Species="cat", Qualities=["sharp"], Notes="x"."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        question = onto["q"][name]
        if question.kind == Question.Kind.TEXT:
            out[str(question.pk)] = {"text": value}
        else:
            vals = value if isinstance(value, list) else [value]
            out[str(question.pk)] = {"options": [onto["opt"][(name, v)] for v in vals]}
    return out


def select(user, rows) -> None:  # type: ignore[no-untyped-def]
    selection_service.clear_selection(user)
    for row in rows:
        selection_service.set_row_selected(user, row, selected=True)


def stored(project: Project, row, kind: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out: dict[str, Any] = {}
    for answer in Answer.objects.filter(project=project, data_row=row, kind=kind).select_related("question"):
        chosen = sorted(AnswerOption.objects.filter(answer=answer).values_list("option__value", flat=True))
        out[answer.question.name] = answer.text if answer.question.kind == Question.Kind.TEXT else chosen
    return out


def submit(user, onto, *, step=STEP.INITIAL_REVIEW, mode="overwrite", batch="b1", priority=3, **values):  # type: ignore[no-untyped-def]
    # The job is queued on commit; django-q2 runs it inline (sync) in unit tests.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.submit_bulk_classification(
            user, onto["project"], answers=ans(onto, **values), step=step, on_existing=mode, batch_name=batch, priority=priority
        )


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        (STEP.INITIAL_LABELING, Answer.Kind.PRELABEL),
        (STEP.INITIAL_REVIEW, Answer.Kind.LABEL),
        (STEP.REWORK, Answer.Kind.LABEL),
        (STEP.DONE, Answer.Kind.LABEL),
    ],
)
def test_step_decides_label_or_prelabel_and_rows_move_to_it(curator, make_rows, onto, step, kind):
    rows = make_rows("ds", ["a.png", "b.png"])
    select(curator, rows)
    job = submit(curator, onto, step=step, Subject="animal", Species="cat")
    job.refresh_from_db()
    assert job.status == BulkClassificationJob.Status.SUCCEEDED
    for row in rows:
        assert stored(onto["project"], row, kind) == {"Subject": ["animal"], "Species": ["cat"]}
        other = Answer.Kind.LABEL if kind == Answer.Kind.PRELABEL else Answer.Kind.PRELABEL
        assert stored(onto["project"], row, other) == {}
    assert set(ProjectDataRow.objects.filter(project=onto["project"]).values_list("step", flat=True)) == {step}
    batch = Batch.objects.get(project=onto["project"], name="b1")
    assert batch.priority == 3 and batch.project_rows.count() == 2
    assert Answer.objects.filter(job=job).count() == 4


@pytest.mark.parametrize(
    ("before", "job_values", "after"),
    [
        # only the answered question is replaced; others stay
        (
            {"Subject": "person", "Qualities": ["sharp"], "Notes": "keep me"},
            {"Subject": "object"},
            {"Subject": ["object"], "Qualities": ["sharp"], "Notes": "keep me"},
        ),
        # replacing a parent replaces its sub-answers too
        ({"Subject": "animal", "Species": "dog", "Notes": "n"}, {"Subject": "person"}, {"Subject": ["person"], "Notes": "n"}),
        (
            {"Subject": "animal", "Species": "dog"},
            {"Subject": "animal", "Species": "cat"},
            {"Subject": ["animal"], "Species": ["cat"]},
        ),
        # answering an unrelated question keeps the nested pair
        (
            {"Subject": "animal", "Species": "dog"},
            {"Subject": "animal", "Species": "dog", "Qualities": ["dark", "blurry"]},
            {"Subject": ["animal"], "Species": ["dog"], "Qualities": ["blurry", "dark"]},
        ),
    ],
)
def test_overwrite_replaces_only_answered_questions(curator, make_rows, onto, before, job_values, after):
    project = onto["project"]
    (row,) = make_rows("ds", ["x.png"])
    add_rows_to_project(curator, project, [row], batch_name="old", step=STEP.DONE)
    set_answers(curator, project, row, {onto["q"][k]: v for k, v in before.items()}, kind=Answer.Kind.LABEL)
    select(curator, [row])
    preview = services.preview_bulk_classification(
        curator, project, step=STEP.INITIAL_REVIEW, mode="overwrite", answers=ans(onto, **job_values)
    )
    assert preview.to_overwrite == 1
    job = submit(curator, onto, mode="overwrite", **job_values)
    job.refresh_from_db()
    assert stored(project, row, Answer.Kind.LABEL) == after
    assert job.counts["overwritten"] == 1 and job.counts["already_in_project"] == 1 and job.counts["added"] == 0
    # a row already in the project keeps its batch and moves to the step
    pdr = ProjectDataRow.objects.get(project=project, data_row=row)
    assert pdr.batch.name == "old" and pdr.step == STEP.INITIAL_REVIEW


def test_exclude_skips_labeled_rows_but_not_prelabeled_ones(curator, make_rows, onto):
    project = onto["project"]
    labeled, prelabeled, fresh = make_rows("ds", ["l.png", "p.png", "f.png"])
    add_rows_to_project(curator, project, [labeled, prelabeled], batch_name="old")
    set_answers(curator, project, labeled, {onto["q"]["Subject"]: "person"}, kind=Answer.Kind.LABEL)
    set_answers(curator, project, prelabeled, {onto["q"]["Subject"]: "person"}, kind=Answer.Kind.PRELABEL)
    select(curator, [labeled, prelabeled, fresh])
    preview = services.preview_bulk_classification(
        curator, project, step=STEP.DONE, mode="exclude", answers=ans(onto, Subject="object"), batch_name="b1"
    )
    assert (preview.selected, preview.skipped_labeled, preview.to_add, preview.already_in_project) == (3, 1, 1, 1)
    job = submit(curator, onto, step=STEP.DONE, mode="exclude", Subject="object")
    job.refresh_from_db()
    assert job.counts == {"added": 1, "overwritten": 0, "already_in_project": 1, "skipped_labeled": 1, "skipped_benchmark": 0}
    assert stored(project, labeled, Answer.Kind.LABEL) == {"Subject": ["person"]}  # untouched
    assert list(JobSkippedRow.objects.filter(job=job).values_list("data_row_id", "reason")) == [(labeled.pk, "labeled")]
    assert stored(project, prelabeled, Answer.Kind.LABEL) == {"Subject": ["object"]}
    assert stored(project, prelabeled, Answer.Kind.PRELABEL) == {"Subject": ["person"]}  # pre-labels are not labels
    assert stored(project, fresh, Answer.Kind.LABEL) == {"Subject": ["object"]}


NESTED = {"Subject": "animal", "Species": "dog"}


@pytest.mark.parametrize(
    ("before", "before_kind", "step", "mode", "job_values", "overwritten", "skipped", "after"),
    [
        # A pre-label job never touches labels: nothing of the row's is overwritten.
        (
            NESTED,
            Answer.Kind.LABEL,
            STEP.INITIAL_LABELING,
            "overwrite",
            {"Subject": "scene"},
            0,
            0,
            {"Subject": ["animal"], "Species": ["dog"]},
        ),
        # Pre-labels are not labels: exclude keeps the row; its pre-labels to the answered
        # question and the one nested under it are replaced, and counted as overwritten.
        (NESTED, Answer.Kind.PRELABEL, STEP.INITIAL_LABELING, "exclude", {"Subject": "scene"}, 1, 0, {"Subject": ["scene"]}),
        # A label job over pre-labels adds labels beside them: nothing overwritten.
        (
            NESTED,
            Answer.Kind.PRELABEL,
            STEP.DONE,
            "overwrite",
            {"Subject": "scene"},
            0,
            0,
            {"Subject": ["animal"], "Species": ["dog"]},
        ),
        # Labels only to questions this job does not answer: they stay, nothing overwritten.
        (
            {"Notes": "keep"},
            Answer.Kind.LABEL,
            STEP.DONE,
            "overwrite",
            {"Subject": "scene"},
            0,
            0,
            {"Notes": "keep", "Subject": ["scene"]},
        ),
        # Exclude with labels present: skipped, so not overwritten either.
        (
            NESTED,
            Answer.Kind.LABEL,
            STEP.DONE,
            "exclude",
            {"Subject": "scene"},
            0,
            1,
            {"Subject": ["animal"], "Species": ["dog"]},
        ),
    ],
)
def test_overwritten_counts_the_rows_whose_answers_the_job_replaces(
    curator, make_rows, onto, before, before_kind, step, mode, job_values, overwritten, skipped, after
):  # type: ignore[no-untyped-def]
    project = onto["project"]
    (row,) = make_rows("ds", ["x.png"])
    add_rows_to_project(curator, project, [row], batch_name="old")
    set_answers(curator, project, row, {onto["q"][k]: v for k, v in before.items()}, kind=before_kind)
    select(curator, [row])
    preview = services.preview_bulk_classification(curator, project, step=step, mode=mode, answers=ans(onto, **job_values))
    assert (preview.to_overwrite, preview.skipped_labeled) == (overwritten, skipped)
    job = submit(curator, onto, step=step, mode=mode, **job_values)
    job.refresh_from_db()
    assert (job.counts["overwritten"], job.counts["skipped_labeled"]) == (overwritten, skipped)
    assert stored(project, row, before_kind) == after  # the row's answers of the earlier kind


def test_benchmark_rows_are_never_touched_and_counted(curator, make_rows, onto):
    project = onto["project"]
    bench, normal = make_rows("ds", ["bench.png", "n.png"])
    add_rows_to_project(curator, project, [bench], batch_name="gold", step=STEP.DONE, benchmark=True)
    set_answers(curator, project, bench, {onto["q"]["Subject"]: "person"}, kind=Answer.Kind.LABEL)
    select(curator, [bench, normal])
    preview = services.preview_bulk_classification(
        curator, project, step=STEP.REWORK, mode="overwrite", answers=ans(onto, Subject="object")
    )
    assert (preview.skipped_benchmark, preview.to_add, preview.to_overwrite) == (1, 1, 0)
    job = submit(curator, onto, step=STEP.REWORK, Subject="object")
    job.refresh_from_db()
    assert job.counts["skipped_benchmark"] == 1 and job.counts["added"] == 1
    assert stored(project, bench, Answer.Kind.LABEL) == {"Subject": ["person"]}
    assert ProjectDataRow.objects.get(project=project, data_row=bench).step == STEP.DONE
    assert list(JobSkippedRow.objects.filter(job=job).values_list("data_row_id", "reason")) == [(bench.pk, "benchmark")]
    note = Notification.objects.filter(user=curator, job=job, level=Notification.Level.SUCCESS).get()
    assert "1 skipped" in note.text


def test_consensus_projects_are_refused(curator, make_rows, onto):
    consensus = create_project(curator, name="Consensus", ontology=onto["project"].ontology, consensus=True)
    select(curator, make_rows("ds", ["a.png"]))
    with pytest.raises(services.WizardValidationError) as err:
        services.submit_bulk_classification(
            curator,
            consensus,
            answers=ans(onto, Subject="person"),
            step=STEP.DONE,
            on_existing="overwrite",
            batch_name="b",
            priority=5,
        )
    assert "Consensus projects" in err.value.errors["project"]
    assert not BulkClassificationJob.objects.exists()


def test_projects_without_global_questions_are_not_eligible(curator, onto):
    empty = Ontology.objects.create(name="empty")
    create_project(curator, name="No questions", ontology=empty)
    names = list(services.eligible_projects().values_list("name", flat=True))
    assert "No questions" not in names and onto["project"].name in names


@pytest.mark.parametrize(
    ("form", "errors"),
    [
        ({}, {"Subject"}),  # required global question
        ({"Subject": "animal"}, {"Species"}),  # required sub-question under a chosen option
        ({"Subject": "person"}, set()),  # Species hidden: not required
        ({"Subject": "animal", "Species": "cat"}, set()),
        ({"Subject": "person", "Species": "cat"}, set()),  # hidden sub-answer is dropped, not stored
    ],
)
def test_required_and_nested_validation(onto, form, errors):
    q, opt = onto["q"], onto["opt"]
    data = QueryDict(mutable=True)
    for name, value in form.items():
        data[f"q{q[name].pk}"] = str(opt[(name, value)])
    answers = services.parse_answers(onto["project"], data)
    found = services.validate_answers(onto["project"], answers)
    assert {key for key in found if key.startswith("q")} == {f"q{q[n].pk}" for n in errors}
    if form == {"Subject": "person", "Species": "cat"}:
        assert str(q["Species"].pk) not in answers


def test_batch_name_clash_is_reported_before_submit(curator, make_rows, onto):
    Batch.objects.create(project=onto["project"], name="taken", priority=5)
    select(curator, make_rows("ds", ["a.png"]))
    assert services.batch_name_taken(onto["project"], "taken")
    with pytest.raises(services.WizardValidationError) as err:
        submit(curator, onto, batch="taken", Subject="person")
    assert "already has a batch named “taken”" in err.value.errors["batch_name"]


def test_jobs_above_the_limit_are_split_into_batches(curator, make_rows, onto, settings):
    settings.CURIO_JOB_ROW_LIMIT = 3
    settings.CURIO_JOB_CHUNK_SIZE = 2  # batches must continue across chunks
    rows = make_rows("ds", [f"r{i}.png" for i in range(7)])
    select(curator, rows)
    assert services.preview_bulk_classification(
        curator, onto["project"], step=STEP.DONE, mode="overwrite", answers=ans(onto, Subject="scene"), batch_name="big"
    ).batch_names == [
        "big",
        "big_2",
        "big_3",
    ]
    job = submit(curator, onto, batch="big", Subject="scene")
    job.refresh_from_db()
    assert job.batch_names == ["big", "big_2", "big_3"]
    sizes = {b.name: b.project_rows.count() for b in Batch.objects.filter(project=onto["project"])}
    assert sizes == {"big": 3, "big_2": 3, "big_3": 1}


def test_rows_already_in_the_project_are_counted_and_not_duplicated(curator, make_rows, onto):
    project = onto["project"]
    old, new = make_rows("ds", ["old.png", "new.png"])
    add_rows_to_project(curator, project, [old], batch_name="earlier")
    select(curator, [old, new])
    preview = services.preview_bulk_classification(
        curator, project, step=STEP.DONE, mode="overwrite", answers=ans(onto, Subject="person")
    )
    assert (preview.already_in_project, preview.to_add) == (1, 1)
    job = submit(curator, onto, Subject="person")
    job.refresh_from_db()
    assert job.counts["already_in_project"] == 1 and job.counts["added"] == 1
    assert ProjectDataRow.objects.filter(project=project).count() == 2


def test_select_all_job_is_frozen_at_submit(curator, make_rows, onto):
    rows = make_rows("ds", ["animals/a.png", "animals/b.png", "food/c.png"])
    selection_service.select_all(curator, QueryDict("f=folder&op=eq&v=animals"))
    selection_service.set_row_selected(curator, rows[1], selected=False)
    job = submit(curator, onto, Subject="person")
    # Ticking more rows after submit does not change the job.
    selection_service.set_row_selected(curator, rows[2], selected=True)
    job.refresh_from_db()
    assert job.total_rows == 1
    assert list(ProjectDataRow.objects.filter(project=onto["project"]).values_list("data_row__global_key", flat=True)) == [
        "animals/a.png"
    ]


def test_rerunning_a_finished_job_changes_nothing(curator, make_rows, onto):
    from classification.engine import run_bulk_classification

    select(curator, make_rows("ds", ["a.png", "b.png"]))
    job = submit(curator, onto, Subject="animal", Species="horse", Qualities=["sharp", "bright"])
    before = Answer.objects.count(), AnswerOption.objects.count()
    assert run_bulk_classification(job.pk) is None  # finished: not claimable
    assert run_bulk_classification(job.pk, force=True) is None
    assert (Answer.objects.count(), AnswerOption.objects.count()) == before == (6, 8)


def test_annotation_filter_chunks_work_by_hand(client_in, curator, make_rows, onto):
    """The seed's loop: filter "is not one of", select all, classify, repeat."""
    project, q, opt = onto["project"], onto["q"], onto["opt"]
    rows = make_rows("ds", [f"img-{i}.png" for i in range(5)])
    not_person = f"ap={project.pk}&aop=not_in&aq={q['Subject'].pk}&ao={opt[('Subject', 'person')]}"
    page = client_in.get("/?" + not_person).content.decode()
    assert all(r.global_key in page for r in rows)
    select(curator, rows[:2])
    submit(curator, onto, Subject="person")
    page = client_in.get("/?" + not_person).content.decode()
    assert [r.global_key in page for r in rows] == [False, False, True, True, True]
    is_person = not_person.replace("aop=not_in", "aop=in")
    page = client_in.get("/?" + is_person).content.decode()
    assert [r.global_key in page for r in rows] == [True, True, False, False, False]
    assert "img-2.png" in client_in.get(f"/?ap={project.pk}&aop=unlabeled").content.decode()
    assert "img-2.png" not in client_in.get(f"/?ap={project.pk}&aop=labeled").content.decode()
    # pre-labels are not labels
    select(curator, rows[2:3])
    submit(curator, onto, step=STEP.INITIAL_LABELING, batch="b2", Subject="object")
    assert "img-2.png" in client_in.get(f"/?ap={project.pk}&aop=unlabeled").content.decode()
    # a bad id in the URL is an error on the page, not a crash
    assert "does not exist" in client_in.get("/?ap=999999&aop=labeled").content.decode()

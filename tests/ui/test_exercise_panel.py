"""The exercise panel: listing, rendering, live objectives, answers, requests and export.

Objectives are checked on real tiny sessions (a few Trainer steps of the
exercise's own configuration, narrowed to 16 units), so a tick in the panel
is the grader's verdict on the same data.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gradsim.teaching.exercises import exercise_files, load_exercise
from gradsim.grading.grader import grade
from gradsim.resources import resource_path
from gradsim.session.store import Session
from gradsim.train.trainer import Trainer
from ui.panels.exercise import DONE, NOT_YET, PENDING, ExercisePanel, export_submission

VANISHING = "vanishing-sigmoid"


def _run(exercise, steps: int = 3, **changes) -> Session:
    """A few real steps of the exercise's starting point, on a narrow net (fast)."""
    cfg = dataclasses.replace(exercise.config, width=16, n_samples=200, batch_size=32, **changes)
    trainer = Trainer(cfg, exercise.events)
    for _ in range(steps):
        trainer.step()
    return trainer.session


@pytest.fixture
def panel(qtbot):
    p = ExercisePanel()
    qtbot.addWidget(p)
    return p


@pytest.fixture(scope="module")
def vanishing_session() -> Session:
    return _run(load_exercise(resource_path("exercises", "01-vanishing-sigmoid.toml")))


def test_lists_every_shipped_exercise_with_title_and_level(panel):
    assert panel.combo.count() == len(exercise_files()) >= 9
    assert len(panel.exercises()) == len(exercise_files())
    model = panel.combo.model()
    for i, ex in enumerate(panel.exercises()):
        assert model.item(i).isEnabled()
        assert ex.title in panel.combo.itemText(i)
        assert f"[{ex.level}]" in panel.combo.itemText(i)
    assert panel.list_note.isHidden()
    assert panel.current_exercise().id == VANISHING


def test_selecting_an_exercise_renders_its_markdown_body(panel, qtbot):
    exercises = panel.exercises()
    for i in [1, 2, 3, 4, 5, 0]:  # index 0 is shown first: visit it last, so every pick is a change
        ex = exercises[i]
        with qtbot.waitSignal(panel.exercise_selected, check_params_cb=lambda e, ex=ex: e is ex):
            panel.combo.setCurrentIndex(i)
        text = panel.body_view.toPlainText()
        for word in ex.title.split()[1:4]:
            assert word in text
        assert "**" not in text  # rendered, not shown as source
        assert list(panel.objective_rows) == [o.id for o in ex.objectives]
        assert set(panel.statuses().values()) == {PENDING}
        assert list(panel.answer_edits) == [a.id for a in ex.answers]
    assert panel.select_exercise("init-comparison")
    assert panel.current_exercise().id == "init-comparison"
    assert not panel.select_exercise("no-such-exercise")


def test_every_control_has_a_tooltip(panel):
    controls = [panel.combo, panel.reload_button, panel.body_view, panel.start_button, panel.export_button, panel.summary]
    controls += list(panel.answer_edits.values())
    controls += [w for row in panel.objective_rows.values() for w in row]
    for w in controls:
        assert w.toolTip(), w


def test_objectives_turn_done_when_the_session_satisfies_them(panel, qtbot, vanishing_session):
    panel.update_from(vanishing_session)
    status = panel.statuses()
    assert status["vanishes"] == DONE  # layer 1 / last hidden at step 0 is ~1e-13 in a 20-layer sigmoid net
    assert status["ran"] == NOT_YET  # 3 of 500 steps
    assert status["q_ratio"] == PENDING  # nothing typed yet
    assert "3 steps" in panel.objective_rows["ran"][0].toolTip()
    assert panel.config_warning.isHidden()

    truth = next(r.value for r in panel.results() if r.id == "q_ratio")
    edit = panel.answer_edits["q_ratio"]
    qtbot.keyClicks(edit, f"{truth:.3e}")
    assert panel.statuses()["q_ratio"] == "answered"  # typing marks nothing: no guessing until green
    qtbot.mouseClick(panel.check_button, Qt.MouseButton.LeftButton)
    assert panel.statuses()["q_ratio"] == DONE
    edit.clear()
    qtbot.keyClicks(edit, "0.5")  # thirteen decades off
    assert panel.statuses()["q_ratio"] == "answered"  # the edit cleared the mark
    panel.check_answers()
    assert panel.statuses()["q_ratio"] == NOT_YET
    edit.clear()
    assert panel.statuses()["q_ratio"] == PENDING


def test_typed_answers_are_marked_only_when_checked(panel, qtbot, vanishing_session):
    panel.update_from(vanishing_session)
    truth = next(r.value for r in panel.results() if r.id == "q_ratio")
    edit = panel.answer_edits["q_ratio"]
    assert panel.check_button.isVisibleTo(panel)
    seen = set()
    for guess in ("0.5", "1e-3", "1e-8", f"{truth:.3e}"):  # a student trying numbers
        edit.clear()
        qtbot.keyClicks(edit, guess)
        panel.update_from(vanishing_session)  # the 2 Hz re-check sees every keystroke's text
        seen.add(panel.statuses()["q_ratio"])
        assert panel.objective_rows["q_ratio"][0].text().endswith("answered")
    assert seen == {"answered"}
    panel.check_answers()
    assert panel.statuses()["q_ratio"] == DONE


def test_the_answer_value_is_never_shown(panel, qtbot, vanishing_session):
    """The 'vanishes' detail holds the very ratio the question asks for: it must stay hidden."""
    panel.update_from(vanishing_session)
    truth = next(r.value for r in panel.results() if r.id == "q_ratio")
    qtbot.keyClicks(panel.answer_edits["q_ratio"], "0.5")
    shown = f"{truth:.4g}"
    for status_label, text_label in panel.objective_rows.values():
        assert shown not in status_label.toolTip()
        assert shown not in text_label.toolTip()
    assert "hidden" in panel.objective_rows["vanishes"][0].toolTip() or "not shown" in panel.objective_rows["vanishes"][0].toolTip()


def test_objectives_stay_not_done_on_a_session_that_does_not_satisfy_them(panel):
    healthy = load_exercise(resource_path("exercises", "02-relu-he-fix.toml"))
    session = _run(healthy)  # ReLU + He: no vanishing, wrong activation for exercise 1
    panel.update_from(session)
    status = panel.statuses()
    assert status["vanishes"] == NOT_YET
    assert status["ran"] == NOT_YET
    assert status["q_ratio"] == PENDING
    assert not panel.config_warning.isHidden()
    assert "activation" in panel.config_warning.text()
    panel.update_from(None)
    assert set(panel.statuses().values()) == {PENDING}


def test_a_session_with_too_few_layers_is_not_yet_never_a_crash(panel):
    panel.select_exercise("batchnorm-rescue")
    small = Session(3, {"depth": 2})
    panel.update_from(small)  # empty session, layer 'last_hidden' of 3
    assert set(panel.statuses().values()) <= {NOT_YET, PENDING}


def test_answers_returns_typed_numbers(panel, qtbot):
    panel.select_exercise("init-comparison")
    qtbot.keyClicks(panel.answer_edits["q_xavier"], "4e-5")
    qtbot.keyClicks(panel.answer_edits["q_dead"], "0.25")
    assert panel.answers() == {"q_xavier": pytest.approx(4e-5), "q_dead": pytest.approx(0.25)}
    panel.answer_edits["q_dead"].clear()
    qtbot.keyClicks(panel.answer_edits["q_dead"], "abc")  # the validator refuses letters
    assert panel.answers() == {"q_xavier": pytest.approx(4e-5)}
    # typed answers survive switching to another exercise and back
    panel.select_exercise(VANISHING)
    assert panel.answers() == {}
    panel.select_exercise("init-comparison")
    assert panel.answers() == {"q_xavier": pytest.approx(4e-5)}


def test_start_requested_carries_the_exercise(panel, qtbot):
    panel.select_exercise("exploding")
    with qtbot.waitSignal(panel.start_requested, check_params_cb=lambda ex: ex.id == "exploding") as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    ex = blocker.args[0]
    assert ex is panel.current_exercise()
    assert ex.config.init == "normal"


def test_submission_requested_carries_exercise_and_answers(panel, qtbot):
    qtbot.keyClicks(panel.answer_edits["q_ratio"], "1e-12")
    with qtbot.waitSignal(panel.submission_requested) as blocker:
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    ex, answers = blocker.args
    assert ex.id == VANISHING
    assert answers == {"q_ratio": pytest.approx(1e-12)}


def test_export_submission_writes_the_session_and_submission_json(tmp_path, vanishing_session):
    ex = load_exercise(resource_path("exercises", "01-vanishing-sigmoid.toml"))
    folder = export_submission(tmp_path / "alice", ex, vanishing_session, {"q_ratio": 1e-12})
    assert folder == tmp_path / "alice"
    for name in ("session.json", "steps.csv", "layers.csv", "events.csv", "submission.json"):
        assert (folder / name).is_file(), name
    doc = json.loads((folder / "submission.json").read_text())
    assert doc["exercise"] == VANISHING
    assert doc["answers"] == {"q_ratio": 1e-12}
    assert [r["id"] for r in doc["results"]] == [o.id for o in ex.objectives]
    g = grade(ex, folder)  # the grader reads it back
    assert not g.error and g.exercise_ok


def test_export_submission_raises_a_clear_oserror(tmp_path, vanishing_session):
    ex = load_exercise(resource_path("exercises", "01-vanishing-sigmoid.toml"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "sub"  # its parent is a file: cannot be created, even as root
    with pytest.raises(OSError) as info:
        export_submission(target, ex, vanishing_session, {})
    msg = str(info.value)
    assert str(target) in msg and VANISHING in msg
    with pytest.raises(OSError, match="does not exist"):
        export_submission(tmp_path / "no-such-folder" / "sub.zip", ex, vanishing_session, {})
    assert not (tmp_path / "no-such-folder").exists()


def test_a_submission_named_zip_is_one_zip_the_grader_reads(tmp_path, vanishing_session):
    ex = load_exercise(resource_path("exercises", "01-vanishing-sigmoid.toml"))
    zipped = export_submission(tmp_path / "ada.zip", ex, vanishing_session, {"q_ratio": 1e-12}, "Ada")
    folder = export_submission(tmp_path / "ada", ex, vanishing_session, {"q_ratio": 1e-12}, "Ada")
    import zipfile

    with zipfile.ZipFile(zipped) as zf:
        names = sorted(zf.namelist())
        assert names == sorted(p.name for p in folder.iterdir())
        for name in names:  # the same content as the folder form (session.json: the export time aside)
            if name == "session.json":
                a, b = json.loads(zf.read(name)), json.loads((folder / name).read_text())
                assert a["config"] == b["config"] and a["events"] == b["events"]
            else:
                assert zf.read(name) == (folder / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "qsettings") == ["ada", "ada.zip"]  # no temporary left
    g_zip, g_dir = grade(ex, zipped), grade(ex, folder)
    assert g_zip.error == "" and g_zip.student == "Ada"
    assert [r.passed for r in g_zip.results] == [r.passed for r in g_dir.results]


def test_export_submission_does_not_disguise_a_defect_as_a_write_error(tmp_path, vanishing_session, monkeypatch):
    """Only file-system failures read "cannot write the submission"; a programming error
    (here: evaluating an objective raises KeyError) propagates as itself, to be logged."""
    import gradsim.teaching.exercises

    ex = load_exercise(resource_path("exercises", "01-vanishing-sigmoid.toml"))

    def broken(*_args, **_kwargs):
        raise KeyError("objective metric")

    monkeypatch.setattr(gradsim.teaching.exercises, "write_submission", broken)
    with pytest.raises(KeyError):
        export_submission(tmp_path / "sub", ex, vanishing_session, {})


def test_a_malformed_exercise_is_listed_disabled_with_its_error(qtbot, tmp_path, monkeypatch):
    res = tmp_path / "resources"
    shutil.copytree(resource_path("presets"), res / "presets")
    (res / "exercises").mkdir()
    shipped = len(exercise_files())
    for f in exercise_files():
        shutil.copy(f, res / "exercises" / f.name)
    (res / "exercises" / "00-broken.toml").write_text(
        'id = "broken"\ntitle = "Broken"\nlevel = "expert"\n[[objectives]]\nkind = "no_divergence"\nsteps = 5\n'
    )
    (res / "exercises" / "99-not-toml.toml").write_text("id = = \n")
    monkeypatch.setenv("GRADSIM_RESOURCES", str(res))

    p = ExercisePanel()
    qtbot.addWidget(p)
    assert p.combo.count() == shipped + 2  # the shipped ones + 2 broken
    model = p.combo.model()
    broken = [i for i in range(p.combo.count()) if not model.item(i).isEnabled()]
    assert broken == [0, shipped + 1]
    tip = p.combo.itemData(0, Qt.ItemDataRole.ToolTipRole)
    assert "00-broken.toml" in tip and "level" in tip and "expert" in tip
    assert "00-broken.toml" in p.combo.itemText(0)
    assert "not valid TOML" in p.combo.itemData(shipped + 1, Qt.ItemDataRole.ToolTipRole)
    assert not p.list_note.isHidden() and "2 exercise file(s)" in p.list_note.text()
    assert p.current_exercise() is not None and p.current_exercise().id == VANISHING
    assert len(p.exercises()) == shipped


def test_the_complete_example_in_the_docs_parses():
    """docs/exercises.md shows one complete exercise: it must stay a valid one."""
    import re

    from gradsim.teaching.exercises import parse_exercise

    doc = (Path(__file__).resolve().parents[2] / "docs" / "exercises.md").read_text(encoding="utf-8")
    section = doc.split("## A complete example", 1)[1]
    text = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    ex = parse_exercise(text, "docs example")
    assert ex.id == "tanh-depth" and ex.config.depth == 40 and ex.events == ()
    assert [o.id for o in ex.objectives] == ["reinit", "stays_finite", "learns", "q_ratio"]
    assert ex.config_problems(ex.config.to_dict()) == []  # its own starting point meets [require]


def test_reload_keeps_the_chosen_exercise_and_emits_once(panel, qtbot):
    panel.select_exercise("clipping")
    seen = []
    panel.exercise_selected.connect(seen.append)
    qtbot.mouseClick(panel.reload_button, Qt.MouseButton.LeftButton)
    assert [e.id for e in seen] == ["clipping"]
    assert panel.current_exercise().id == "clipping"

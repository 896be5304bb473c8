"""The Exercises menu lists the exercises; the View menu lists each panel once."""
from __future__ import annotations

from gradsim.teaching.exercises import exercise_files, load_exercise


def _texts(menu) -> list[str]:
    return [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]


def test_the_exercises_menu_lists_every_readable_exercise_when_opened(window):
    menu = window.teaching.menu
    assert window.teaching._exercise is None  # nothing read at start-up
    menu.aboutToShow.emit()  # what opening the menu does (before it is visible)
    titles = [load_exercise(p).title for p in exercise_files()]
    listed = _texts(menu)
    assert titles and all(any(t.startswith(title) for t in listed) for title in titles), listed
    # choosing one opens it in the dock, in exercise mode
    first = next(a for a in menu.actions() if a.text().startswith(titles[0]))
    first.trigger()
    assert window.teaching.exercise.active and window.teaching.exercise_dock.isVisible()
    assert window.teaching.exercise.current_exercise().title == titles[0]


def test_the_view_menu_lists_each_panel_once(window):
    window.learned.show()  # its dock exists now: still listed once (by its own action)
    window.teaching.exercise_action.setChecked(True)
    window.teaching.jacobian_action.setChecked(True)
    view = window.window_actions.view_menu
    texts = _texts(view)
    assert len(texts) == len(set(texts)), texts
    assert sum("network learns" in t for t in texts) == 1

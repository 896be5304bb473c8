"""The Pre/Post-LN exercise: a student who moves the norms at step 1 and reads both ratios from
their own session passes; one who swaps the two readings, or never moves the norms, does not.
The ratios are recomputed here from the session's units by name, not through the exercise."""
import numpy as np

from gradsim.commands import parse_event
from gradsim.grading.grader import grade
from gradsim.teaching.exercises import exercise_files, load_exercise, write_submission
from gradsim.train.trainer import Trainer


def _exercise():
    return next(load_exercise(f) for f in exercise_files() if load_exercise(f).id == "pre-post-ln")


def _run(ex, plan):
    t = Trainer(ex.config.with_changes(steps=40), list(ex.events) + [parse_event(e) for e in plan])
    t.run()
    return t.session


def _ratio(session, step):
    names = [u.name for u in session.units]
    g = session.layer_metric("grad_norm")[int(np.flatnonzero(session.steps == step)[0])].astype(np.float64)
    return float(g[names.index("mlp 8")] / g[names.index("mlp 1")])


def test_the_answers_name_the_last_and_first_blocks_mlp():
    ex = _exercise()
    s = _run(ex, [])
    names = [u.name for u in s.units]
    for a in ex.answers:
        assert (names[a.quantity.layer_a - 1], names[a.quantity.layer_b - 1]) == ("mlp 8", "mlp 1")


def test_right_answers_pass_swapped_or_lazy_ones_fail(tmp_path):
    ex = _exercise()
    s = _run(ex, ["1:norm=pre"])
    post, pre = _ratio(s, 0), _ratio(s, 1)
    assert post / pre > 10 ** 0.2  # the lesson: Post-LN's output side is relatively larger, beyond the answers' tolerance
    good = {r.id: r.passed for r in grade(ex, write_submission(tmp_path / "good", ex, s, {"q_post": post, "q_pre": pre}), replay=False).results}
    assert good == {"switched": True, "q_post": True, "q_pre": True, "learns": good["learns"]}  # 40 steps: learning is graded elsewhere
    swapped = {r.id: r.passed for r in grade(ex, write_submission(tmp_path / "swap", ex, s, {"q_post": pre, "q_pre": post}), replay=False).results}
    assert swapped["switched"] and not swapped["q_post"] and not swapped["q_pre"]
    lazy = _run(ex, [])
    stays = {r.id: r.passed for r in grade(ex, write_submission(tmp_path / "lazy", ex, lazy, {"q_post": post, "q_pre": pre}), replay=False).results}
    assert not stays["switched"] and stays["q_post"] and not stays["q_pre"]  # step 1 of a Post-LN run is not Pre-LN's ratio

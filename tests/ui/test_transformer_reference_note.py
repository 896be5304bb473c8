"""The depth profile of a transformer run says the Xiong et al. reference in words (the Pre-LN
law at initialisation, and that it does not apply to trained weights) and draws its level line,
dashed, where one applies."""
from __future__ import annotations

from gradsim.config import RunConfig
from gradsim.train.trainer import Trainer
from gradsim.transformer_reference import reference_at
from ui.plots.depth_profile import DepthProfile


def test_the_note_carries_the_reference_words_at_init_and_after_training(qtbot):
    cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=4, depth=2, width=16, heads=2, n_samples=64, batch_size=16,
                    steps=3, stats_every=1, optimizer="adam", lr=1e-3, norm_position="pre")
    s = Trainer(cfg).run()
    dp = DepthProfile()
    qtbot.addWidget(dp)
    dp.set_metric("grad_norm")
    dp.refresh(s)
    dp.show_step(0)
    assert reference_at(s, 0).words in dp.note.text() and "1/sqrt(L)" in dp.note.text()
    dp.show_step(2)
    assert "derived for weights at initialisation, and by step 2" in dp.note.text()
    dp.set_metric("act_grad_norm")
    assert "Xiong" not in dp.note.text()


def test_the_reference_line_is_drawn_where_one_applies_at_the_references_value(qtbot):
    import numpy as np

    cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=4, depth=3, width=16, heads=2, n_samples=64, batch_size=16,
                    steps=3, stats_every=1, optimizer="adam", lr=1e-3, norm_position="pre")
    s = Trainer(cfg).run()
    dp = DepthProfile()
    qtbot.addWidget(dp)
    dp.set_metric("grad_norm")
    dp.refresh(s)
    dp.show_step(0)
    ref = reference_at(s, 0)
    assert ref.line is not None
    x, y = dp.reference
    # the block units sit at their positions among the drawn parameter rows (blocks, then embed and head)
    drawn = dp._rows if dp._rows is not None else list(range(len(s.units)))
    assert [drawn[int(p) - 1] for p in x] == list(ref.rows) and len(x) == 2 * cfg.depth
    blocks = np.asarray(s.layer_metric("grad_norm")[0], dtype=np.float64)[list(ref.rows)]
    np.testing.assert_allclose(y, np.exp(np.mean(np.log(blocks))), rtol=1e-12)  # the geometric mean, level
    np.testing.assert_allclose(dp.reference_curve._y, ref.line, rtol=1e-12)  # what the item draws
    np.testing.assert_array_equal(dp.reference_curve._x, x)
    assert dp.reference_curve.opts["pen"].style() == dp.prediction_curve.opts["pen"].style()  # dashed like the theory line
    assert "reference (Xiong et al.)" in [e[1] for e in dp.legend._entries]
    dp.show_step(2)  # trained weights: words only
    assert dp.reference[0].size == 0 and dp.reference_curve._y.size == 0
    assert "reference (Xiong et al.)" not in [e[1] for e in dp.legend._entries]


def test_the_post_ln_note_fits_a_1280x720_depth_profile_and_keeps_the_fork_hint(qtbot):
    """About 400 px wide (the depth profile at 1280x720): the note wraps onto two lines and
    shows whole clauses, so the fork hint is read, not clipped; the tooltip has all of it."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtWidgets import QWidget

    cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=4, depth=2, width=16, heads=2, n_samples=64, batch_size=16,
                    steps=2, stats_every=1, optimizer="adam", lr=1e-3, norm_position="post")
    s = Trainer(cfg).run()
    host = QWidget()
    qtbot.addWidget(host)
    host.resize(420, 400)
    dp = DepthProfile(host)
    dp.resize(400, 380)
    host.show()
    dp.set_metric("grad_norm")
    dp.refresh(s)
    dp.show_step(0)
    words = reference_at(s, 0).words
    shown = dp.note.text() and dp.note._shown
    assert shown.startswith("no reference line for Post-LN; fork the run and set norm=pre on one branch")
    assert shown.endswith("…") and words.startswith(shown[:-1].rstrip())  # whole clauses, in order
    fm = dp.note.fontMetrics()
    width = dp.note.contentsRect().width()
    box = fm.boundingRect(QRect(0, 0, width, 10_000), int(Qt.TextFlag.TextWordWrap), shown)
    assert box.width() <= width and box.height() <= 2 * fm.lineSpacing() <= dp.note.height()
    assert words in dp.note.toolTip()
    # one line would have shown the first clause only: the second line is what carries the hint
    assert fm.horizontalAdvance(shown) > width


def test_a_one_line_note_too_narrow_for_its_first_clause_shows_its_elided_start(qtbot):
    from PySide6.QtWidgets import QWidget

    from ui.plots.labels import NoteLabel

    host = QWidget()
    qtbot.addWidget(host)
    note = NoteLabel()
    note.setParent(host)
    note.resize(70, 20)  # narrower than "no theory line …"
    host.show()
    note.setText("no theory line (GradSim has no mean-field theory for model 'transformer')")
    assert note.fontMetrics().horizontalAdvance("no theory line …") > note.contentsRect().width()
    assert note._shown.startswith("no") and note._shown.endswith("…") and len(note._shown) > 3

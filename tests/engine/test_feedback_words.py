"""Feedback pages render the exercise's Markdown safely and say every requirement in plain words."""
from __future__ import annotations

import re

import pytest

from gradsim.grading.markdown_html import markdown_to_html
from gradsim.metric_words import LAYER_WORDS, METRIC_WORDS, event_words, layer_words, step_words
from gradsim.teaching.exercises import exercise_files, load_exercise

#: Names a student should never have to decode on a feedback page.
INTERNAL = re.compile(r"\b(act_grad_norm|grad_norm|update_ratio|act_dead|act_saturation|last_hidden|bias_grad_norm)\b")


def test_every_metric_a_plot_or_an_exercise_names_has_words():
    from gradsim.metrics import NORM_METRICS, STATS_METRICS

    assert set(NORM_METRICS) | set(STATS_METRICS) | {"loss", "accuracy", "clipped"} <= set(METRIC_WORDS)


@pytest.mark.parametrize("path", exercise_files(), ids=lambda p: p.stem)
def test_every_requirement_of_every_exercise_is_in_plain_words(path):
    ex = load_exercise(path)
    for o in ex.objectives:
        words = o.required()
        assert not INTERNAL.search(words), (o.id, words)
        assert ">=" not in words and "<=" not in words and " x " not in words, (o.id, words)


def test_the_word_helpers():
    assert layer_words(1) == "layer 1" and layer_words("last_hidden") == "the last hidden layer"
    assert set(LAYER_WORDS) == {"first", "middle", "last_hidden", "last"}
    assert step_words(0) == "step 0" and step_words("last") == "the last step"
    assert event_words("batchnorm", "on") == "batch norm switched on (batchnorm=on)"
    assert event_words("lr") == "a learning-rate change (lr)"


def test_markdown_blocks_and_inline_markup():
    src = "# Title\n\nSome **bold** and *it* and `a*b*c`.\n\n1. first\n   continued\n2. second\n\n- x\n- y\n"
    out = markdown_to_html(src)
    assert out.splitlines() == [
        "<h2>Title</h2>",
        "<p>Some <strong>bold</strong> and <em>it</em> and <code>a*b*c</code>.</p>",
        "<ol><li>first continued</li><li>second</li></ol>",
        "<ul><li>x</li><li>y</li></ul>",
    ]


def test_markdown_escapes_everything_and_links_only_http():
    out = markdown_to_html('<img src=x onerror=alert(1)> [bad](javascript:alert(1)) [ok](https://e.org/a?b=1&c=2) `<b>`')
    assert "<img" not in out and "&lt;img" in out
    assert 'href="javascript' not in out
    assert '<a href="https://e.org/a?b=1&amp;c=2">ok</a>' in out
    assert "<code>&lt;b&gt;</code>" in out
    # a quote cannot close the href and add an attribute
    assert "onmouseover" not in markdown_to_html('[x](https://e.org/"onmouseover="alert(1))').split("href=")[-1].split(">")[0]


def test_the_feedback_page_renders_the_exercise_markdown():
    from gradsim.grading.feedback import Band, render_page
    from gradsim.grading.grade import Grade

    ex = load_exercise(exercise_files()[0])
    grade = Grade("s", True, [], [], error="no data", student="Ada")
    band = Band((), (), (), (), (0,))
    page = render_page(ex, grade, None, {}, band, "ada")
    assert "<strong>sigmoid</strong>" in page and "<ol><li>Press <strong>Run</strong>" in page
    assert "**sigmoid**" not in page

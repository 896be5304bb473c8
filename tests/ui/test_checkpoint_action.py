"""File > Save checkpoint...: the engine writes a checkpoint of the live run that
loads and holds the same network as the run trained headless."""
from __future__ import annotations

import torch
from PySide6.QtWidgets import QFileDialog

from gradsim.config import RunConfig
from gradsim.train.checkpoint import load_checkpoint
from gradsim.train.trainer import Trainer


def test_save_checkpoint_action_writes_a_loadable_checkpoint(window, qtbot, tmp_path, monkeypatch):
    target = tmp_path / "live.ckpt"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state == "finished", timeout=60000)
    assert window.window_actions.checkpoint in window.menuBar().actions()[0].menu().actions()
    window.window_actions.checkpoint.trigger()
    qtbot.waitUntil(target.is_file, timeout=20000)
    data = load_checkpoint(target)
    cfg = RunConfig.from_dict(data["config"])
    assert cfg.depth == 4 and cfg.width == 12 and cfg.steps == 40
    assert data["steps_run"] == 40 == data["state"]["step_index"]
    assert [e["kind"] for e in data["events"]] == [e.kind for e in window.mirror.events]
    headless = Trainer(cfg)
    headless.run()
    want = headless.state()["net"]
    assert sorted(data["state"]["net"]) == sorted(want)
    for k, v in want.items():
        assert torch.equal(data["state"]["net"][k], v), k


def test_save_checkpoint_without_a_run_says_so(window, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: asked.append(a) or ("", "")))
    window.window_actions.checkpoint.trigger()
    assert asked == [] and "No run to checkpoint" in window.statusBar().currentMessage()

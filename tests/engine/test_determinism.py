"""A run is a pure function of (config, seed, schedule): same inputs, same CSVs."""
from gradsim.commands import parse_event
from gradsim.config import RunConfig
from gradsim.teaching.presets import parse_run_file
from gradsim.session.io import STEPS_HEADER, export_session
from gradsim.train.trainer import Trainer

ELAPSED = STEPS_HEADER.index("elapsed_s")  # wall clock: the one column a replay may change


def _csvs(session, tmp_path, name):
    out = export_session(session, tmp_path / name)
    steps = [",".join(c for i, c in enumerate(line.split(",")) if i != ELAPSED) for line in (out / "steps.csv").read_text().splitlines()]  # elapsed_s aside
    return steps, (out / "layers.csv").read_text(), (out / "events.csv").read_text(), out


SCHEDULE = ["3:activation=relu", "5:batchnorm=on", "6:init=he_normal", "7:clip=value:0.1", "8:optimizer=adam", "9:lr=0.001", "10:batchnorm=off"]


def test_same_inputs_give_identical_csvs(tmp_path):
    cfg = RunConfig(dataset="circles", n_samples=300, depth=4, width=12, steps=14, stats_every=2, optimizer="momentum")
    runs = []
    for i in range(2):
        t = Trainer(cfg, [parse_event(e) for e in SCHEDULE])
        t.run()
        runs.append(_csvs(t.session, tmp_path, f"r{i}"))
    assert runs[0][:3] == runs[1][:3]


def test_replay_from_session_json_is_identical(tmp_path):
    """Commands applied live (as the GUI does) replay headless from session.json."""
    cfg = RunConfig(dataset="xor", n_samples=300, depth=4, width=12, steps=14, stats_every=3)
    live = Trainer(cfg)
    for item in [parse_event(e) for e in SCHEDULE]:
        live.run(steps=item.step - live.step_index)
        live.apply(item.command)  # like a toggle between steps
    live.session.add_event(live.step_index, "pause")  # annotations do not replay
    live.run()
    first = _csvs(live.session, tmp_path, "live")
    cfg2, schedule = parse_run_file(first[3] / "session.json")
    assert cfg2 == cfg and [s.text() for s in schedule] == SCHEDULE
    replay = Trainer(cfg2, schedule)
    replay.run()
    second = _csvs(replay.session, tmp_path, "replay")
    assert first[0] == second[0] and first[1] == second[1]


def test_a_notebook_session_at_two_threads_replays_bit_for_bit_through_the_config_path(tmp_path):
    """torch's default in a notebook is a thread per core; `gradsim run --config` trains on one.

    Batch norm's batch statistics are reductions that torch splits across
    threads, so without the trainer pinning one thread these CSVs differ from
    step 0 on (batch norm from the start, then toggled like batchnorm-rescue).
    """
    import torch

    from gradsim.cli.main import main

    cfg = RunConfig(activation="relu", init="he_normal", batchnorm=True, depth=4, width=32, batch_size=64, steps=8, stats_every=1)
    schedule = [parse_event(e) for e in ("3:batchnorm=off", "5:batchnorm=on")]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        notebook = Trainer(cfg, schedule)
        notebook.run()
        assert torch.get_num_threads() == 2  # the caller's setting is left as it was
        first = _csvs(notebook.session, tmp_path, "notebook")
        assert main(["run", "--config", str(first[3] / "session.json"), "--out", str(tmp_path / "cli")]) == 0
        assert torch.get_num_threads() == 1  # `gradsim run` trains on one thread
    finally:
        torch.set_num_threads(before)
    steps = [",".join(c for i, c in enumerate(line.split(",")) if i != ELAPSED) for line in (tmp_path / "cli" / "steps.csv").read_text().splitlines()]
    assert len(steps) == 9
    assert first[0] == steps
    assert first[1] == (tmp_path / "cli" / "layers.csv").read_text()

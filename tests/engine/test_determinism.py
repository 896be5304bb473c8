"""A run is a pure function of (config, seed, schedule): same inputs, same CSVs."""
from gradsim.commands import parse_event
from gradsim.config import RunConfig
from gradsim.teaching.presets import parse_run_file
from gradsim.session.io import export_session
from gradsim.train.trainer import Trainer


def _csvs(session, tmp_path, name):
    out = export_session(session, tmp_path / name)
    steps = [",".join(line.split(",")[:-1]) for line in (out / "steps.csv").read_text().splitlines()]  # elapsed_s aside
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

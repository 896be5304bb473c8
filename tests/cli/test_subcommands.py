"""The command line is built from one module per subcommand, listed once in gradsim/cli/main.py."""
import argparse
import ast
import types
from pathlib import Path

import pytest

from gradsim.cli import main as cli_main
from gradsim.cli.main import SUBCOMMANDS, build_parser, main

CLI_DIR = Path(cli_main.__file__).parent


def _defines(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_module_with_add_parser_and_cmd_is_listed():
    """A subcommand module left out of SUBCOMMANDS would be dead code nobody can call."""
    modules = sorted(p.stem for p in CLI_DIR.glob("*.py") if {"add_parser", "cmd"} <= _defines(p))
    listed = sorted(m.__name__.rsplit(".", 1)[1] for m in SUBCOMMANDS)
    assert modules == listed and {"run", "sweep", "check", "replicate"} <= set(listed)


def test_help_lists_the_subcommands_in_the_listed_order():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [m.__name__.rsplit(".", 1)[1] for m in SUBCOMMANDS]


def test_each_name_dispatches_to_its_own_module(monkeypatch):
    for i, module in enumerate(SUBCOMMANDS):
        monkeypatch.setattr(module, "cmd", lambda args, i=i: 40 + i)
    assert main(["replicate", "--list"]) == 40 + SUBCOMMANDS.index(cli_main.replicate)
    assert main(["check", "ex.toml", "sub"]) == 40 + SUBCOMMANDS.index(cli_main.check)


def test_a_new_subcommand_is_one_module_and_one_entry(monkeypatch, capsys):
    hello = types.ModuleType("gradsim.cli.hello")

    def add_parser(sub):
        p = sub.add_parser("hello", help="say hello")
        p.add_argument("--name", required=True)
        return p

    def cmd(args):
        print(f"hello {args.name}")
        return 3

    hello.add_parser, hello.cmd = add_parser, cmd
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", SUBCOMMANDS + (hello,))
    assert main(["hello", "--name", "x"]) == 3
    assert capsys.readouterr().out == "hello x\n"
    assert main(["hello"]) == 2  # the shared parser: one line, exit 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gradsim: error: the following arguments are required: --name"]


@pytest.mark.parametrize("argv", [["bogus"], []])
def test_unknown_or_missing_subcommand_is_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gradsim: error:")

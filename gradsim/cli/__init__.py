"""The headless command line: ``python -m gradsim SUBCOMMAND``."""

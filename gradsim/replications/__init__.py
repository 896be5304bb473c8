"""Replications of the classic results on vanishing and exploding gradients.

``python -m gradsim replicate --list | NAME [--full] --out DIR`` (gradsim.cli.main);
the window's Help > Replications... runs the same code in its worker.
"""
from __future__ import annotations

from .criticality import Schoenholz2017
from .framework import MODES, Cancelled, Replication, ReplicationError, Report, run_replication, total_steps
from .glorot import Glorot2010
from .recurrent import Bengio1994, Hochreiter1997, Le2015
from .spectra import Pennington2017, Saxe2014
from .training import He2015, Ioffe2015, Pascanu2013

#: In the order the README and docs/replications.md list them.
REPLICATIONS: dict[str, Replication] = {
    r.name: r
    for r in (He2015(), Glorot2010(), Saxe2014(), Pennington2017(), Schoenholz2017(), Ioffe2015(), Pascanu2013(), Bengio1994(), Hochreiter1997(), Le2015())
}


def get_replication(name: str) -> Replication:
    try:
        return REPLICATIONS[name]
    except KeyError:
        raise ReplicationError(f"replication {name!r} is not known; allowed: {', '.join(REPLICATIONS)}") from None


__all__ = ["MODES", "REPLICATIONS", "Cancelled", "Replication", "ReplicationError", "Report", "get_replication", "run_replication", "total_steps"]

"""torchrun (torch.distributed.run), started as `python3 launch.py ARGS...` with the same arguments.

Why not the `torchrun` command itself: Debian 12's python3-torch (1.13) on Python 3.11 cannot parse its own
default `--redirects 0` / `--tee 0` (Std.from_str iterates the IntFlag, which on 3.11 skips the zero
member and returns None, and the agent then fails in to_map). When that bug is present this replaces the
parser with one that maps the digits to the flags directly; any other torch runs unchanged.

A trainer that stops on bad input says why in one line and exits with status 2 (train.py's fail); torchrun
would add a log line per process and a traceback of its own. Those are left out for status 2 alone: any
other failure (a crash, a signal) is reported in full.
"""

import logging
import re
import sys

from torch.distributed.elastic.multiprocessing import api
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

TRAINER_REFUSED = 2


class _TrainerRefusals(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return f"exitcode: {TRAINER_REFUSED})" not in record.getMessage()


logging.getLogger(api.__name__).addFilter(_TrainerRefusals())

if api.Std.from_str("0") is None:

    def _std_from_str(cls, vm):
        if re.fullmatch(r"[0-3]", vm):
            return cls(int(vm))
        if re.fullmatch(r"(\d+:[0-3],)*\d+:[0-3]", vm):
            return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
        raise ValueError(f"{vm} is neither a digit 0-3 nor a mapping like 0:1,1:2")

    api.Std.from_str = classmethod(_std_from_str)

from torch.distributed.run import main  # noqa: E402

if __name__ == "__main__":
    try:
        sys.exit(main())
    except ChildFailedError as err:
        if all(f.exitcode == TRAINER_REFUSED for f in err.failures.values()):
            sys.exit(TRAINER_REFUSED)
        raise

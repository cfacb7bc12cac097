"""Errors a person can read: a user's mistake ends a command with one line, a bug with its traceback.

Reading order: the two exception types the library raises for bad input; `run_main`, which every
entry script's `if __name__ == "__main__"` goes through.

A bad file, a missing checkpoint or mismatched settings raise `UserError` (a ValueError, so code
that catches ValueError keeps working), or `MissingFileError` (also a FileNotFoundError). The
message starts with what it is about, "FILE:LINE: field 'x' ..." where there is a line and a field.
`run_main` prints it as `error: MESSAGE` on stderr, once (rank 0 under torchrun), and exits with
status 2. Ctrl-C ends a command with one line ("interrupted; rerun the same command to resume") and
status 130 (the shell's code for SIGINT), on every rank without a traceback: every output here resumes.
Anything else is a programming error and keeps its traceback.
"""
import os
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class UserError(ValueError):
    """Bad input from the person running a command: a file, a flag, a checkpoint, settings."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the command needs is not there."""


USER_ERROR_EXIT = 2  # argparse's status for a bad command line; ours for bad input of any kind
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


def report_user_error(error: BaseException, prog: str) -> None:
    """The one line a user sees, printed by rank 0 only (torchrun runs the same error in every rank)."""
    if int(os.environ.get("RANK", 0)) == 0:
        message = " ".join(str(error).split())
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def run_main(main: Callable[[list[str] | None], T], argv: list[str] | None, prog: str) -> T:
    """`main(argv)`'s result; a UserError becomes one line on stderr and SystemExit(2). Entry scripts
    call it inside their own `main(argv)`, so that running them in-process (experiments/) behaves
    as the command line does."""
    try:
        return main(argv)
    except UserError as e:
        report_user_error(e, prog)
        raise SystemExit(USER_ERROR_EXIT) from None
    except KeyboardInterrupt:
        if int(os.environ.get("RANK", 0)) == 0:
            print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED_EXIT) from None

"""The one error family sitewatch raises for problems a user can fix.

The command-line entry points turn a `SitewatchError` into a single line on
stderr and its `exit_code`, never a traceback.
"""

from __future__ import annotations


class SitewatchError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 1


class UsageError(SitewatchError):
    """Bad arguments: the command cannot start. Exit code 2, like argparse."""

    exit_code = 2


class InputError(SitewatchError):
    """An input file is missing, unreadable or not what the command expects."""

    exit_code = 1


class OutputError(SitewatchError):
    """An output cannot be written (disk full, no permission); the message names the file."""

    exit_code = 1

"""What minisc's command lines share: one-line errors and argument checks.

A command that is going to train for an hour must refuse a typo at once, in one line that
says what was wrong and what it expects, with exit status 2 (the convention for "bad usage")
and without a traceback, which would only bury the one useful sentence.
"""

import argparse
import math
import sys


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (plus exit status 2)."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _number(kind, convert, low, low_ok, what):
    """An argparse type: ``convert`` the text, then require it to be above ``low``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if value < low or (value == low and not low_ok):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    parse.__name__ = kind           # argparse names the type in some messages
    return parse


#: argparse types for the usual cases; the message says what is expected.
positive_int = _number("positive integer", int, 1, True, "an integer >= 1")
non_negative_int = _number("non-negative integer", int, 0, True, "an integer >= 0")
positive_float = _number("positive number", float, 0.0, False, "a number > 0")

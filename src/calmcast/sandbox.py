"""A Jinja sandbox with a budget: a template from a stranger cannot hang or fill memory.

Jinja's own sandbox stops templates reaching Python's internals; this one also bounds what
they can make. Operators and filters that can build something huge (`*`, `**`, `%`, `+`,
`center`, `indent`, `format`, `replace`, ...) check the size of their result before making
it, `range` counts every step of every loop against one budget, and the whole render has a
time limit (measured between steps and, in the main thread, by an alarm) and an output
limit. Crossing any of them raises BudgetError, which names the limit.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
import time
from collections.abc import Iterator

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .limits import MAX_RENDERED_CHARS, MAX_TEMPLATE_NUMBER, MAX_TEMPLATE_SECONDS

#: Every loop step of every `range` in one render, together.
MAX_STEPS = 1_000_000
#: The widest field a format string or a padding filter may ask for.
MAX_WIDTH = 10_000
_WIDTH = re.compile(r"(\d+)")
#: Memory a render may take beyond what the process holds when it starts.
MEMORY_HEADROOM = 256 << 20


class BudgetError(Exception):
    """A template went past one of calmcast's limits."""


class _Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_TEMPLATE_SECONDS

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise BudgetError(f"its loops ran more than {MAX_STEPS:,} steps")
        if self.steps % 1024 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetError(f"it ran for more than {MAX_TEMPLATE_SECONDS:g} s")


def _size(x) -> int:
    return len(x) if isinstance(x, (str, bytes, list, tuple)) else 0


def _number(x) -> None:
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) > MAX_TEMPLATE_NUMBER:
        raise BudgetError(f"a number above {MAX_TEMPLATE_NUMBER:.0e}")
    if isinstance(x, float) and math.isfinite(x) and abs(x) > MAX_TEMPLATE_NUMBER:
        raise BudgetError(f"a number above {MAX_TEMPLATE_NUMBER:.0e}")


def _text(n: int) -> None:
    if n > MAX_RENDERED_CHARS:
        raise BudgetError(f"a piece of text longer than {MAX_RENDERED_CHARS:,} characters")


def _widths(fmt: str) -> None:
    """Refuse a format string that asks for a field wider than MAX_WIDTH."""
    for m in _WIDTH.finditer(fmt):
        if len(m.group(1)) > 5 or int(m.group(1)) > MAX_WIDTH:
            raise BudgetError(f"a field wider than {MAX_WIDTH:,} characters")


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox calmcast renders practices in."""

    intercepted_binops = frozenset(["*", "**", "%", "+", "//", "/"])

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._local = threading.local()
        self.globals["range"] = self._range
        for name in ("center", "indent", "truncate", "wordwrap"):
            self.filters[name] = self._wide(self.filters[name])
        self.filters["format"] = self._format_filter
        self.filters["replace"] = self._replace

    # -- the budget of the render in progress ---------------------------------------------

    @property
    def budget(self) -> _Budget:
        budget = getattr(self._local, "budget", None)
        if budget is None:
            budget = self._local.budget = _Budget()
        return budget

    def render(self, template: jinja2.Template, context: dict) -> str:
        """Return template rendered within the budget; raise BudgetError past it."""
        self._local.budget = _Budget()
        out, total = [], 0
        try:
            with _guard(MAX_TEMPLATE_SECONDS + 1):
                for chunk in template.generate(**context):
                    total += len(chunk)
                    if total > MAX_RENDERED_CHARS:
                        raise BudgetError(f"it wrote more than {MAX_RENDERED_CHARS:,} characters")
                    out.append(chunk)
                    self.budget.check_time()
        except MemoryError:
            raise BudgetError(f"it needed more than {MEMORY_HEADROOM >> 20} MB") from None
        except RecursionError:
            raise BudgetError(
                "it called itself too deeply (a macro or an include that never ends)"
            ) from None
        return "".join(out)

    # -- what is intercepted ----------------------------------------------------------------

    def call_binop(self, context, operator, left, right):
        self.budget.step()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _size(seq) and isinstance(n, int):
                    _text(len(seq) * max(n, 0))
        elif operator == "**":
            if isinstance(left, (int, float)) and isinstance(right, (int, float)):
                base = abs(float(left))
                if (
                    base > 1
                    and right > 0
                    and right * math.log10(base) > math.log10(MAX_TEMPLATE_NUMBER)
                ):
                    raise BudgetError(f"a power above {MAX_TEMPLATE_NUMBER:.0e}")
        elif operator == "%" and isinstance(left, str):
            _widths(left)
        elif operator == "+":
            _text(_size(left) + _size(right))
        result = super().call_binop(context, operator, left, right)
        _number(result)
        return result

    def call(self, __context, __obj, *args, **kwargs):
        self.budget.step()
        padding = getattr(__obj, "__name__", None) in (
            "ljust",
            "rjust",
            "center",
            "zfill",
            "expandtabs",
        )
        if padding and args and isinstance(args[0], int) and args[0] > MAX_WIDTH:
            raise BudgetError(f"a field wider than {MAX_WIDTH:,} characters")
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _widths(str(value.__self__))  # str.format and format_map, before they run
        return wrapped

    def _range(self, *args) -> Iterator[int]:
        for a in args:
            if not isinstance(a, int) or isinstance(a, bool):
                raise TypeError(f"range() takes whole numbers, not {a!r}")
        budget = self.budget
        for i in range(*args):
            budget.step()
            yield i

    @staticmethod
    def _wide(f):
        def bounded(*args, **kwargs):
            for v in (*args, *kwargs.values()):
                if isinstance(v, int) and not isinstance(v, bool) and v > MAX_WIDTH:
                    raise BudgetError(f"a width above {MAX_WIDTH:,}")
            return f(*args, **kwargs)

        for attr in ("jinja_pass_arg",):
            if hasattr(f, attr):
                setattr(bounded, attr, getattr(f, attr))
        return bounded

    def _format_filter(self, value, *args, **kwargs):
        _widths(str(value))
        return str(value) % (kwargs or args)

    def _replace(self, s, old, new, count=None):
        s, old, new = str(s), str(old), str(new)
        times = s.count(old) if old else len(s) + 1
        if count is not None:
            times = min(times, count)
        _text(len(s) + times * max(len(new) - len(old), 0))
        return s.replace(old, new, -1 if count is None else count)


@contextlib.contextmanager
def _guard(seconds: float):
    """In the main thread, stop a render that never reaches a budget check (one long C call)
    with an alarm, and bound the memory it may take (where the platform has rlimits)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def fire(signum, frame):
        raise BudgetError(f"it ran for more than {MAX_TEMPLATE_SECONDS:g} s")

    before = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    limit = _limit_memory()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, limit)


def _limit_memory():
    """Cap the address space at what the process uses now plus MEMORY_HEADROOM."""
    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = used + MEMORY_HEADROOM
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        if soft != resource.RLIM_INFINITY and soft < cap:
            return None
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        return soft, hard
    except (OSError, ValueError, AttributeError):  # no /proc, no resource module
        return None

"""EchoJob: prints what it was called with, for testing a schedule end to end."""

from __future__ import annotations

from typing import Any, ClassVar

from jobs.base import Argument, BaseJob
from jobs.params import ANY_ARGS, ANY_KWARGS


class EchoJob(BaseJob):
    description: ClassVar[str] = "Simple job that echoes arguments"
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument(ANY_ARGS, "array", "Any values, echoed back in order", source="pub_args"),
        Argument(ANY_KWARGS, "object", "Any keyword arguments, echoed back", source="pub_kwargs"),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        executed_at = self.context.now().isoformat()
        # The seed's output shape: Python reprs of the list and the dict.
        print(f"Echo Job executed at {executed_at}")
        print(f"Args: {list(args)}")
        print(f"Kwargs: {kwargs}")
        return {"executed_at": executed_at, "args": list(args), "kwargs": kwargs}

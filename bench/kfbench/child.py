"""Inside a framework's venv: time bootstrap, session create, run and close.

Run as a script, ``python child.py SPEC``, so that it is the run's main
module: a worker process started with ``spawn`` or ``forkserver`` imports
the main module again, and this one imports only the standard library,
as a user's script or the frameworks' own commands would. The suite as the
main module would add its whole harness to every such worker.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def child(spec: dict[str, Any]) -> None:
    """Inside the framework's venv: time bootstrap + session create + run + close."""
    project = Path(spec["project"])
    pipeline, runner_name, params = spec["pipeline"], spec["runner"], spec["params"]
    if spec["framework"] == "kilnflow":
        from kilnflow import runner as kf_runners
        from kilnflow.project import bootstrap_project as kf_bootstrap
        from kilnflow.session import Session

        runner_class = getattr(kf_runners, f"{runner_name.capitalize()}Runner")
        started = time.perf_counter()
        kf_bootstrap(project)
        with Session.create(extra_params=params) as session:
            created = time.perf_counter()
            session.run(pipeline_name=pipeline, runner=runner_class())
    else:
        from kedro import runner as kd_runners
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project as kd_bootstrap

        runner_class = getattr(kd_runners, f"{runner_name.capitalize()}Runner")
        started = time.perf_counter()
        kd_bootstrap(project)
        with KedroSession.create(project_path=project, runtime_params=params) as kd_session:
            created = time.perf_counter()
            kd_session.run(pipeline_names=[pipeline], runner=runner_class())
    finished = time.perf_counter()
    result = {
        "seconds": finished - started,
        "create": round(created - started, 6),
        "run": round(finished - created, 6),
    }
    Path(spec["result"]).write_text(json.dumps(result), "utf-8")


if __name__ == "__main__":
    child(json.loads(sys.argv[1]))

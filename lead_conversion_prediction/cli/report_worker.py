"""The process that draws a monitoring report and logs its run, beside the scoring one.

``lcp predict --monitor`` and ``lcp monitor`` start it when they start
(``stages/_monitoring.py``). It imports matplotlib (and MLflow's store, when it logs: task
``draw-and-log``) while the model loads and the batch is scored, on the other core and under
its own interpreter lock, then waits for one request on stdin: the drift report, the
monitoring experiment and the output folder, as JSON. It writes ``report.html``, logs the
monitoring run if its task says so, and answers on stdout with one JSON line: done, an error
the user can fix (one line, as ``lcp`` prints it), or a bug's traceback. It ends with its
parent, and quietly when stdin closes without a request (the scoring failed).
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def main() -> None:
    from lead_conversion_prediction.utils.logging import configure_logging
    from lead_conversion_prediction.utils.processes import die_with_parent

    die_with_parent(int(sys.argv[1]))
    configure_logging(sys.argv[2])
    logs = sys.argv[3] == "draw-and-log"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    answer: dict[str, str] = {}
    try:
        warm_up(logs)
        request = sys.stdin.readline()
        if not request:
            return  # the scoring failed: nothing to publish
        publish(json.loads(request), logs)
        answer["done"] = "yes"
    except Exception as error:
        answer = told(error)
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def warm_up(logs: bool) -> None:
    """Import what drawing (and logging) need, and draw once: fonts and the PNG writer."""
    import importlib
    from io import BytesIO

    from matplotlib.figure import Figure

    from lead_conversion_prediction.monitoring import report  # noqa: F401
    from lead_conversion_prediction.stages._monitoring import WARM_MODULES

    for module in WARM_MODULES if logs else ():
        importlib.import_module(module)
    Figure(figsize=(1, 1)).savefig(BytesIO(), format="png")


def publish(request: dict[str, object], logs: bool) -> None:
    """Write ``report.html`` and, if asked, log the monitoring run of the request's report."""
    from pathlib import Path

    from lead_conversion_prediction.monitoring.drift import DriftReport
    from lead_conversion_prediction.stages._monitoring import write_and_log

    report = DriftReport.model_validate(request["report"])
    experiment = str(request["experiment"]) if logs else None
    write_and_log(experiment, report, Path(str(request["output"])))


def told(error: Exception) -> dict[str, str]:
    """The answer for an error: its line as ``lcp`` tells it, or the traceback of a bug."""
    from lead_conversion_prediction.cli.errors import one_line

    lines = one_line(error)
    if lines is None:
        return {"bug": traceback.format_exc()}
    return {"error": "\n".join(line.removeprefix("error: ") for line in lines)}


if __name__ == "__main__":
    main()

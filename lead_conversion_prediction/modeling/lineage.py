"""Where a registered model comes from: the commit, the data, the parameters, the evaluation set
and the process that logged it, as one typed record that becomes the runs' and version's tags.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lead_conversion_prediction.config import Params

# The commit of a checkout copied without .git (a Dagger container's): what lineage records.
COMMIT_ENV_VAR = "LCP_GIT_COMMIT"
# The tags naming the process that logs a run: its host, pid and checkout.
OWNER_TAGS = ("lcp.host", "lcp.pid", "lcp.root")


class RunOwner(BaseModel):
    """The process that logs a run: it tells a run of a dead process from a live one."""

    model_config = ConfigDict(frozen=True)

    host: str
    pid: int
    root: str

    @classmethod
    def this_process(cls, root: Path) -> RunOwner:
        """This process, working on the checkout at ``root``."""
        import os
        import socket

        return cls(host=socket.gethostname(), pid=os.getpid(), root=str(root))

    def tags(self) -> dict[str, str]:
        """The owner as MLflow tags (``lcp.host``, ``lcp.pid``, ``lcp.root``)."""
        return dict(zip(OWNER_TAGS, (self.host, str(self.pid), self.root), strict=True))


class Lineage(BaseModel):
    """The lineage every logged run and registered version carries."""

    model_config = ConfigDict(frozen=True)

    git_commit: str  # 'unknown' outside git
    git_dirty: str  # 'true', 'false' or 'unknown'
    raw_md5: str
    params_md5: str
    evaluation_set_md5: str
    selection_metric: str
    promotion_metric: str
    owner: RunOwner
    dvc_experiment: str | None = None

    def tags(self) -> dict[str, str]:
        """The lineage as MLflow tags, under the names the registry has always used."""
        tags = self.model_dump(exclude={"owner", "dvc_experiment"})
        if self.dvc_experiment:
            tags["dvc_experiment"] = self.dvc_experiment
        return {**tags, **self.owner.tags()}

    def summary(self) -> str:
        """The lineage in a version's description: evaluation set, data and commit."""
        dirty = " (dirty)" if self.git_dirty == "true" else ""
        return (
            f"on evaluation set {self.evaluation_set_md5[:8]}, data {self.raw_md5[:8]}, "
            f"commit {self.git_commit[:8]}{dirty}"
        )


def git_state(root: Path) -> tuple[str, str]:
    """The checkout's commit and whether it has uncommitted changes ('unknown' without git).

    ``$LCP_GIT_COMMIT`` names the commit of a copy without .git (a container's), and wins."""
    import os
    import subprocess

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout if result.returncode == 0 else None

    commit = os.environ.get(COMMIT_ENV_VAR) or (git("rev-parse", "HEAD") or "unknown").strip()
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = "unknown" if status is None else ("true" if status.strip() else "false")
    return commit, dirty


def params_md5(params: Params) -> str:
    """The md5 of the parameters, as JSON with sorted keys."""
    import hashlib
    import json

    text = json.dumps(params.model_dump(mode="json"), sort_keys=True)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def dvc_experiment() -> str | None:
    """The name of the DVC experiment this run belongs to, when there is one."""
    import os

    return os.environ.get("DVC_EXP_NAME") or None


def collect_lineage(
    root: Path, params: Params, raw_md5: str, evaluation_set_md5: str, selection_metric: str
) -> Lineage:
    """The lineage of a model trained in the checkout at ``root`` with ``params``."""
    commit, dirty = git_state(root)
    return Lineage(
        git_commit=commit,
        git_dirty=dirty,
        raw_md5=raw_md5,
        params_md5=params_md5(params),
        evaluation_set_md5=evaluation_set_md5,
        selection_metric=selection_metric,
        promotion_metric=params.promotion.metric,
        owner=RunOwner.this_process(root),
        dvc_experiment=dvc_experiment(),
    )

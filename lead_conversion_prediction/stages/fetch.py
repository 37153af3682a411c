"""Get the raw data that ``data/raw/raw_data.csv.dvc`` pins: from a DVC remote, else upstream.

DVC 3 never falls back to an import's source URL: with no remote configured, ``dvc pull``
fails without a request. So the raw file is fetched here:

1. present with the pinned md5: nothing to do;
2. a default DVC remote is configured (``DVC_REMOTE=`` or ``.dvc/config``): ``dvc pull``;
3. otherwise, or when the remote does not have it, the URL the import points at is
   downloaded to a temporary file beside the target, checked against the pinned md5, renamed
   into place and added to the DVC cache. The ``.dvc`` file is left as it is. A download that
   fails on the way (no answer, a cut connection, a 5xx, 408 or 429 status) is tried again
   from the start, ``DOWNLOAD_TRIES`` times in all, ``BACKOFF_SECONDS`` doubling between
   tries: at most about ``3 x timeout + 3 s``. Nothing partial is kept or resumed.

An upstream file with another md5 is refused, and the previous raw file stays as it was.
"""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.exceptions import (
    ArtifactError,
    RawDataChangedError,
    RawDataUnavailableError,
)
from lead_conversion_prediction.stages._io import RawDataPin, read_pin
from lead_conversion_prediction.utils.atomic import atomic_path
from lead_conversion_prediction.utils.logging import log_stage, reroute_dvc_logs
from lead_conversion_prediction.utils.storage import file_digest

DOWNLOAD_TIMEOUT_SECONDS = 60.0
DOWNLOAD_TRIES = 3
BACKOFF_SECONDS = 1.0
_RETRIED_STATUSES = (408, 429)  # and every 5xx
_NETWORK_ERRORS = (
    urllib.error.URLError,
    TimeoutError,
    ConnectionError,
    http.client.HTTPException,
    ValueError,  # a URL urllib cannot fetch
)
_CHUNK = 1 << 20


def run_fetch(paths: Paths) -> Fetched:
    """Get the pinned raw file and log where it came from."""
    with log_stage("fetch") as facts:
        fetched = fetch_raw_data(paths)
        facts.update(md5=fetched.md5, origin=fetched.origin)
    return fetched


@dataclass(frozen=True)
class Fetched:
    """Where the raw file came from: ``workspace``, ``DVC remote '<name>'`` or the URL."""

    path: Path
    md5: str
    origin: str


def fetch_raw_data(paths: Paths, timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> Fetched:
    """Make ``paths.raw_data`` the pinned raw file, from a DVC remote or the upstream URL."""
    pin = read_pin(paths.raw_data_pin)
    target = paths.raw_data
    if target.exists():
        present = file_digest(target, "md5")
        if present == pin.md5:
            return Fetched(target, present, "workspace")
        raise RawDataChangedError(
            f"{target}: md5 {present} is not the pinned {pin.md5}; restore it with "
            f"'dvc checkout {paths.raw_data_pin.name}' or move it aside, then fetch again"
        )
    remote_failure = ""
    remote = default_remote(paths.root)
    if remote is not None:
        try:
            pull(paths.root, paths.raw_data_pin)
            md5 = file_digest(target, "md5")
            if md5 == pin.md5:
                return Fetched(target, md5, f"DVC remote '{remote}'")
            remote_failure = f"DVC remote '{remote}' gave md5 {md5}"
            target.unlink()
        except (ArtifactError, FileNotFoundError) as error:
            remote_failure = f"DVC remote '{remote}' failed ({error})"
        logger.warning("fetch: {}; trying the upstream URL {}", remote_failure, pin.url)
    download(pin, target, timeout, remote_failure, relative_name(pin.file, paths.root))
    add_to_cache(paths.root, paths.raw_data_pin)
    return Fetched(target, pin.md5, pin.url)


def download(
    pin: RawDataPin, target: Path, timeout: float, remote_failure: str = "", pin_name: str = ""
) -> None:
    """Download ``pin.url`` to ``target`` if, and only if, its md5 is the pinned one; a failure
    on the way is tried again (see the module's docstring)."""
    tried = f"{remote_failure}, and " if remote_failure else "no DVC remote is configured and "
    for attempt in range(1, DOWNLOAD_TRIES + 1):
        try:
            _download_once(pin, target, timeout, pin_name)
            return
        except _NETWORK_ERRORS as error:  # a local write error is not retried: it says so
            reason = getattr(error, "reason", None) or error
            if attempt == DOWNLOAD_TRIES or not _worth_retrying(error):
                raise RawDataUnavailableError(
                    f"{target}: cannot fetch the raw data: {tried}{pin.url} did not answer "
                    f"({reason}; {attempt} {'try' if attempt == 1 else 'tries'}); give a "
                    "mirror that holds it with DVC_REMOTE=<path or url>"
                ) from None
            pause = BACKOFF_SECONDS * 2 ** (attempt - 1)
            logger.warning(
                "fetch: {} failed ({}); trying again in {:g} s ({} of {})",
                pin.url,
                reason,
                pause,
                attempt + 1,
                DOWNLOAD_TRIES,
            )
            time.sleep(pause)


def _worth_retrying(error: Exception) -> bool:
    """A failure that another try may not meet: anything but a client error (4xx) status."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code in _RETRIED_STATUSES
    return not isinstance(error, ValueError)  # ValueError: a URL that cannot be fetched


def _download_once(pin: RawDataPin, target: Path, timeout: float, pin_name: str) -> None:
    digest = hashlib.md5(usedforsecurity=False)
    response = urllib.request.urlopen(pin.url, timeout=timeout)
    with response, atomic_path(target) as temporary, temporary.open("wb") as stream:
        while chunk := response.read(_CHUNK):
            digest.update(chunk)
            stream.write(chunk)
        if digest.hexdigest() != pin.md5:
            raise RawDataChangedError(
                f"{pin.url}: upstream md5 {digest.hexdigest()} is not the pinned {pin.md5}; "
                "nothing was changed. To adopt the new version, run "
                f"'dvc update {pin_name or pin.file}' and commit the new pin"
            )


def relative_name(path: Path, root: Path) -> str:
    """``path`` as the user would type it from the project root."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def default_remote(root: Path) -> str | None:
    """The name of the project's default DVC remote, or None when there is none."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    reroute_dvc_logs()

    try:
        with Repo(str(root)) as repo:
            name = repo.config["core"].get("remote")
    except DvcException:  # not a DVC project: no remote to ask
        return None
    return str(name) if name else None


def pull(root: Path, pin_file: Path) -> None:
    """``dvc pull`` of one ``.dvc`` file from the default remote."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    reroute_dvc_logs()

    try:
        with Repo(str(root)) as repo:
            repo.pull(targets=[str(pin_file)])
    except DvcException as error:
        raise ArtifactError(str(error).splitlines()[0]) from None


def add_to_cache(root: Path, pin_file: Path) -> None:
    """Store the raw file in the DVC cache, as ``dvc pull`` would have (the pin is unchanged).

    ``dvc commit`` would also re-check the import's URL; saving the output alone does not.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    reroute_dvc_logs()

    try:
        with Repo(str(root)) as repo:
            (stage,) = repo.stage.collect(str(pin_file))
            for out in stage.outs:
                out.save()
                out.commit()
    except DvcException as error:
        logger.warning("fetch: the raw file is in place but not in the DVC cache ({})", error)

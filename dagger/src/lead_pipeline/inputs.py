"""Where the raw data comes from and where a model is registered, checked before any step."""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import dagger

# The tracking server given as a Dagger service, as the register step reaches it.
TRACKING_HOST = "tracking"
TRACKING_SERVICE_URI = f"http://{TRACKING_HOST}:5000"
# Names a container cannot reach a server of the caller's machine by: they are its own.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
# The commit lineage records for a copy without .git (the package's modeling/lineage.py).
COMMIT_VARIABLE = "LCP_GIT_COMMIT"
COMMIT = re.compile(r"[0-9a-f]{7,40}")


@dataclass(frozen=True)
class RawDataRemote:
    """Where `lcp fetch` pulls the raw data from, and the credential it needs there."""

    directory: dagger.Directory | None = None
    url: str = ""
    secret: dagger.Secret | None = None
    secret_variable: str = ""


@dataclass(frozen=True)
class TrackingServer:
    """The MLflow tracking server the register step uses, its credentials, and the commit its
    versions record."""

    uri: str = ""
    username: str = ""
    password: dagger.Secret | None = None
    service: dagger.Service | None = None
    commit: str = ""

    def checked(self) -> "TrackingServer":
        """The server as the container reaches it; a ValueError of one line when it cannot."""
        if self.commit and not COMMIT.fullmatch(self.commit):
            raise ValueError(f"--commit {self.commit!r}: give a git commit's hex SHA")
        if self.service is not None:
            if self.uri:
                raise ValueError("--tracking-uri or --tracking-service, not both")
            return TrackingServer(
                TRACKING_SERVICE_URI, self.username, self.password, self.service, self.commit
            )
        if not self.uri:
            if self.username or self.password is not None:
                raise ValueError("--tracking-username and --tracking-password need a server")
            return self
        host = urlsplit(self.uri).hostname or ""
        if host in LOOPBACK_HOSTS or host.endswith(".localhost"):
            raise ValueError(
                f"--tracking-uri {self.uri}: {host} in a container is the container itself; "
                "give an address the engine reaches, or the server as --tracking-service"
            )
        if not self.username or self.password is None:
            raise ValueError(
                f"--tracking-uri {self.uri}: the container cannot log in without "
                "--tracking-username and --tracking-password (the server's basic-auth)"
            )
        return self

"""The model to score with: a registry URI or an artifact path, loaded only once verified.

An artifact path is checked against the ``SHA256SUMS`` beside it before it is unpickled. A
``models:/`` or ``runs:/`` URI is downloaded and its files checked against the digest recorded
when it was logged (a tag of its run and registered version); the Pipeline inside is a skops
file, read with only the types it was logged with.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lead_conversion_prediction.exceptions import ArtifactError, NoChampionError, RegistryError

if TYPE_CHECKING:
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile
    from lead_conversion_prediction.scoring import model_cache

PROFILE_NAME = "reference_profile.json"  # beside an artifact, as train writes it
DIGEST_MARK = "@sha256:"  # between a file's name and its digest, in the scores' model column


@dataclass(frozen=True)
class ModelRef:
    """What a ``--model`` option names: a registry or run URI, or an artifact file.

    ``models:/...`` and ``runs:/...`` (anything with ``:/``) are URIs of the tracking store;
    anything else is a path.
    """

    uri: str | None = None
    path: Path | None = None

    @classmethod
    def parse(cls, spec: str | Path | None, default: str | Path | None = None) -> ModelRef:
        """The model ``spec`` names, or ``default`` when it is None (or empty)."""
        text = str(spec) if spec else (str(default) if default else "")
        if not text:
            raise ArtifactError("no model given: name a models:/ or runs:/ URI, or a file")
        if ":/" in text:
            return cls(uri=text)
        return cls(path=Path(text))

    @property
    def is_registry(self) -> bool:
        """True for a URI of the tracking store, False for a file."""
        return self.uri is not None

    def is_file(self, path: Path) -> bool:
        """True when this names the file ``path``."""
        return self.path is not None and self.path.resolve() == path.resolve()

    def __str__(self) -> str:
        return self.uri if self.uri is not None else str(self.path)


def file_provenance(path: Path) -> str:
    """How scores name an artifact file: its name and the start of its SHA-256."""
    from lead_conversion_prediction.utils.storage import file_digest

    return f"{path.name}{DIGEST_MARK}{file_digest(path)[:12]}"


def names_file(provenance: str, path: Path) -> bool:
    """True when a scores' ``model`` value names the file ``path`` as it is now."""
    from lead_conversion_prediction.utils.storage import file_digest

    name, _, digest = provenance.partition(DIGEST_MARK)
    return (
        bool(digest)
        and name == path.name
        and path.is_file()
        and file_digest(path).startswith(digest)
    )


@dataclass(frozen=True)
class LoadedModel:
    """A lead model ready to score, and its provenance: where the scores say it came from."""

    model: Any
    provenance: str
    profile: ReferenceProfile | None = None


def load_scoring_model(
    spec: ModelRef | str | None,
    default: Path,
    with_profile: bool = False,
    cache: Path | None = None,
) -> LoadedModel:
    """Load the model to score with: a registry URI, an artifact path, or ``default``; with
    its reference profile (``with_profile``), which a model without one cannot give; a
    registry model through the ``cache`` folder (``scoring/model_cache.py``) when given."""
    from lead_conversion_prediction.utils.start_up import resume_collector
    from lead_conversion_prediction.utils.storage import load_artifact

    ref = spec if isinstance(spec, ModelRef) else ModelRef.parse(spec, default)
    if ref.uri is not None:
        loaded = load_registered_model(ref.uri, with_profile, cache, workspace_model=default)
    else:
        path = ref.path or default
        model = load_artifact(path)
        profile = read_profile_beside(path) if with_profile else None
        loaded = LoadedModel(model, file_provenance(path), profile)
    use_cores(loaded.model, os.cpu_count() or 1)  # scoring may use every core
    hand_arrays(loaded.model)
    resume_collector()  # the start-up is over: scoring runs with the collector on
    return loaded


def use_cores(model: Any, cores: int) -> None:
    """Let the model's classifier predict on ``cores`` threads.

    A fitted XGBoost model predicts with its booster's own thread count; its ``set_params``
    would also pass the booster every other parameter again, and a booster refuses monotone
    constraints kept as a dict of column names (as models trained before they were kept as a
    string hold them).
    """
    classifier = model[-1]
    if hasattr(classifier, "get_booster"):
        classifier.n_jobs = cores
        classifier.get_booster().set_param({"nthread": cores})
    elif "n_jobs" in classifier.get_params():
        classifier.set_params(n_jobs=cores)


def hand_arrays(model: Any) -> None:
    """Let the preprocessing hand an XGBoost classifier an array rather than a frame.

    The preprocessing names its output columns (a pandas frame), which XGBoost only turns back
    into the same array: a sixth of the time of scoring, for the same probabilities. Other
    classifiers keep the frame: scikit-learn's warn on an array when fitted on named columns.
    """
    if hasattr(model[-1], "get_booster"):
        model[0].set_output(transform="default")


def load_registered_model(
    uri: str,
    with_profile: bool = False,
    cache: Path | None = None,
    workspace_model: Path | None = None,
) -> LoadedModel:
    """The Pipeline of a logged or registered model (and its reference profile), its files
    verified first; with a ``cache`` folder, through what ``scoring/model_cache.py`` keeps, or
    from ``workspace_model`` when that is the very file the version was registered from."""
    from lead_conversion_prediction.config import default_tracking_uri
    from lead_conversion_prediction.scoring import model_cache

    if cache is None:
        return read_registered_model(uri, with_profile)[0]
    tracking_uri = default_tracking_uri()
    state = model_cache.registry_state(tracking_uri, uri)  # before the store is asked
    key = model_cache.Key(tracking_uri, uri, state) if state is not None else None
    resolution = model_cache.remembered(cache, key) if key is not None else None
    resolved_now = resolution is None
    if resolution is None:
        resolution = resolve(uri)
    if resolution.files:
        model_cache.check_files(uri, resolution)
    copy = model_cache.load_copy(cache, resolution.digest, with_profile)
    if copy is not None:
        loaded: LoadedModel | None = LoadedModel(copy[0], resolution.provenance, copy[1])
    else:
        loaded = copy_from_workspace(cache, resolution, workspace_model, with_profile)
    if loaded is None:  # the version the digest came from (an alias may move), by its number
        loaded, digest = read_registered_model(resolution.provenance, with_profile)
        model_cache.keep_copy(cache, digest, loaded.model, loaded.profile)
    if key is not None and resolved_now:
        remember_if_unchanged(cache, key, resolution)
    return loaded


def copy_from_workspace(
    cache: Path, resolution: model_cache.Resolution, model: Path | None, with_profile: bool
) -> LoadedModel | None:
    """The version's Pipeline (and profile) read from the workspace's artifact ``model`` and
    kept as its copy, when that is the file the version was registered from (the registry
    records its SHA-256): nothing downloaded, no skops. None for any other file."""
    from lead_conversion_prediction.scoring import model_cache
    from lead_conversion_prediction.utils.storage import file_digest, load_artifact

    if model is None or not resolution.workspace or not model.is_file():
        return None
    has_profile = model.with_name(PROFILE_NAME).is_file()
    if file_digest(model) != resolution.workspace or (with_profile and not has_profile):
        return None
    pipeline = load_artifact(model)  # checked against its SHA256SUMS first
    profile = read_profile_beside(model) if has_profile else None
    model_cache.keep_copy(cache, resolution.digest, pipeline, profile)
    return LoadedModel(pipeline, resolution.provenance, profile if with_profile else None)


def remember_resolution(uri: str, cache: Path) -> None:
    """Resolve ``uri`` now and keep the answer in ``cache``, for a command that has just
    changed what it names (a registration, a promotion, a rollback) and has MLflow loaded:
    the next scoring asks MLflow nothing. A URI that names nothing yet keeps nothing."""
    from lead_conversion_prediction.config import default_tracking_uri
    from lead_conversion_prediction.scoring import model_cache

    tracking_uri = default_tracking_uri()
    state = model_cache.registry_state(tracking_uri, uri)
    if state is None:
        return
    try:
        resolution = resolve(uri)
    except (ArtifactError, RegistryError):
        return  # no champion yet, or a version registered without a digest
    remember_if_unchanged(cache, model_cache.Key(tracking_uri, uri, state), resolution)


def resolve(uri: str) -> model_cache.Resolution:
    """What MLflow answers for ``uri`` (``model_cache.Resolution``)."""
    from lead_conversion_prediction.modeling.registry import WORKSPACE_TAG
    from lead_conversion_prediction.scoring import model_cache

    tags, provenance = recorded_tags(uri)
    digest = digest_in(tags, uri)
    files = stored_files(provenance) or ""
    return model_cache.Resolution(provenance, digest, files, tags.get(WORKSPACE_TAG, ""))


def remember_if_unchanged(
    cache: Path, key: model_cache.Key, resolution: model_cache.Resolution
) -> None:
    """Keep ``resolution`` for ``key`` if the registered model is still in the state read
    before MLflow was asked (a write meanwhile: the next scoring asks again), and its files
    are local (a store of remote files is asked each time, and checked as it downloads)."""
    from lead_conversion_prediction.scoring import model_cache

    if resolution.files and model_cache.registry_state(key.store, key.uri) == key.state:
        model_cache.remember(cache, key, resolution)


def read_registered_model(uri: str, with_profile: bool) -> tuple[LoadedModel, str]:
    """Download, verify and read a logged or registered model; the digest its files have."""
    import mlflow

    from lead_conversion_prediction.scoring.pyfunc import PIPELINE_ARTIFACT, read_pipeline

    with verified_model_files(uri) as (folder, provenance, digest):
        flavor = mlflow.models.Model.load(str(folder)).flavors["python_function"]
        config = flavor["config"]  # MLflow keeps model_config there
        pipeline = folder / flavor["artifacts"][PIPELINE_ARTIFACT]["path"]
        model = read_pipeline(pipeline, config["pipeline_sha256"], list(config["trusted_types"]))
        profile = logged_profile(folder, flavor, provenance) if with_profile else None
    return LoadedModel(model, provenance, profile), digest


def stored_files(provenance: str) -> str | None:
    """The folder of a registered version's files when its store keeps them as local files;
    None for another artifact store, or a version that is not a logged model."""
    from mlflow import MlflowClient

    name, _, number = provenance.removeprefix("models:/").partition("/")
    if not provenance.startswith("models:/") or not number.isdigit():
        return None
    client = MlflowClient()
    source = str(client.get_model_version(name, number).source)
    if not source.startswith("models:/m-"):
        return None
    location = str(client.get_logged_model(source.removeprefix("models:/")).artifact_location)
    folder = Path(location.removeprefix("file://"))
    return str(folder) if location.startswith("file://") and folder.is_dir() else None


def load_reference_profile(spec: ModelRef, default: Path) -> tuple[ReferenceProfile, str]:
    """The reference profile of a model, and the model's provenance, without loading it."""
    if spec.uri is None:
        path = spec.path or default
        return read_profile_beside(path), file_provenance(path)
    import mlflow

    with verified_model_files(spec.uri) as (folder, provenance, _):
        flavor = mlflow.models.Model.load(str(folder)).flavors["python_function"]
        return logged_profile(folder, flavor, provenance), provenance


def read_profile_beside(model_path: Path) -> ReferenceProfile:
    """The reference profile of a model set, checked against its ``SHA256SUMS``."""
    from lead_conversion_prediction.exceptions import InputNotFoundError
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile
    from lead_conversion_prediction.utils.storage import verify_artifact

    path = model_path.with_name(PROFILE_NAME)
    try:
        content = verify_artifact(path)
    except InputNotFoundError:
        raise ArtifactError(
            f"{model_path}: no reference profile beside it ({PROFILE_NAME}): the model was "
            "trained before monitoring; train it again (lcp train)"
        ) from None
    return ReferenceProfile.model_validate_json(content)


def logged_profile(folder: Path, flavor: dict[str, Any], provenance: str) -> ReferenceProfile:
    """The reference profile logged with a model (its files verified already)."""
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile
    from lead_conversion_prediction.scoring.pyfunc import PROFILE_ARTIFACT

    logged = flavor.get("artifacts", {}).get(PROFILE_ARTIFACT)
    if logged is None:
        raise ArtifactError(
            f"{provenance}: has no reference profile (it was registered before monitoring): "
            "give --model models/lead_model.joblib, or register a model trained since"
        )
    return ReferenceProfile.model_validate_json((folder / logged["path"]).read_bytes())


@contextmanager
def verified_model_files(uri: str) -> Iterator[tuple[Path, str, str]]:
    """Download a model's files to a temporary folder and check them against their digest;
    what the digest leaves out and Python would load (bytecode caches) is removed.

    Yields the folder, the model's provenance (``models:/name/<version>`` for a registry
    URI, the URI otherwise) and the digest.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from lead_conversion_prediction.scoring.pyfunc import drop_unchecked, model_digest

    expected, provenance = recorded_digest(uri)
    with tempfile.TemporaryDirectory(prefix="lcp-model-") as folder:
        try:
            # The version the digest came from (an alias may move in between), by its number.
            local = Path(mlflow.artifacts.download_artifacts(provenance, dst_path=folder))
        except MlflowException as error:
            raise RegistryError(f"{uri}: cannot download the model ({error.message})") from None
        if model_digest(local) != expected:
            raise ArtifactError(f"{uri}: its files differ from the digest recorded when logged")
        drop_unchecked(local)
        yield local, provenance, expected


def recorded_digest(uri: str) -> tuple[str, str]:
    """The digest recorded for a model URI, and the URI's provenance."""
    tags, provenance = recorded_tags(uri)
    return digest_in(tags, uri), provenance


def digest_in(tags: dict[str, str], uri: str) -> str:
    """The model digest among a model URI's recorded ``tags``."""
    from lead_conversion_prediction.scoring.pyfunc import MODEL_DIGEST_TAG

    digest = tags.get(MODEL_DIGEST_TAG)
    if not digest:
        raise ArtifactError(f"{uri}: no digest was recorded for it; register it with lcp")
    return digest


def recorded_tags(uri: str) -> tuple[dict[str, str], str]:
    """The tags of a model URI's run and (for a registry URI) version, and its provenance."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from lead_conversion_prediction.modeling.registry import (
        CHAMPION,
        alias_version,
        get_version,
        require_store,
    )

    require_store(uri)  # before the client, which would create the store
    client = MlflowClient()
    try:
        if uri.startswith("models:/m-") and "/" not in uri.removeprefix("models:/"):
            run_id = client.get_logged_model(uri.removeprefix("models:/")).source_run_id
            provenance, tags = uri, client.get_run(run_id or "").data.tags
        elif uri.startswith("models:/"):
            name, _, reference = uri.removeprefix("models:/").partition("@")
            if reference:
                version = alias_version(name, reference)
                if version is None and reference == CHAMPION:
                    raise NoChampionError(name)
                if version is None:
                    raise RegistryError(f"{uri}: no version of {name} holds that alias")
            else:
                name, _, number = name.partition("/")
                if not number.isdigit():
                    raise RegistryError(f"{uri}: name a version (models:/{name}/<n>) or alias")
                version = get_version(name, int(number))
            provenance = f"models:/{version.name}/{version.version}"
            tags = {**client.get_run(version.run_id or "").data.tags, **version.tags}
        elif uri.startswith("runs:/"):
            run_id, provenance = uri.removeprefix("runs:/").split("/", 1)[0], uri
            tags = client.get_run(run_id).data.tags
        else:
            raise ArtifactError(f"{uri}: not a models:/ or runs:/ URI, nor a file")
    except MlflowException as error:
        raise RegistryError(f"{uri}: {error.message}") from None
    return dict(tags), provenance

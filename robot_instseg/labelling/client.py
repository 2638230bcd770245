"""The Label Studio calls the round trip makes, through label-studio-sdk, with every failure
turned into one LabellingError that names the server and what it said."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import unquote, urlparse

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from robot_instseg.labelling.errors import LabellingError


def _plain(item: Any) -> dict:
    """An SDK model as a plain dict (pydantic 2 or 1)."""
    if isinstance(item, dict):
        return item
    return item.model_dump() if hasattr(item, "model_dump") else item.dict()


class LabelStudioClient:
    """One Label Studio server reached with one API key (a legacy token or a personal access token)."""

    def __init__(self, url: str, api_key: str, timeout: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise LabellingError(f"--url {url!r} is not an http(s) address", "unreachable")
        if not api_key:
            raise LabellingError("no API key (--api-key or LABEL_STUDIO_API_KEY)", "auth")
        self.url, self.api_key = url.rstrip("/"), api_key
        # Any: the SDK's generated types are narrower than what its REST API takes (task dicts)
        self.sdk: Any = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout)

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        try:
            yield
        except ApiError as exc:
            reason = "auth" if exc.status_code in (401, 403) else "refused"
            detail = exc.body
            if isinstance(exc.body, dict):
                detail = " ".join(str(exc.body[k]) for k in ("detail", "validation_errors") if exc.body.get(k))
            raise LabellingError(f"Label Studio at {self.url} refused to {what}: HTTP {exc.status_code} "
                                 f"{str(detail)[:300]}", reason) from exc
        except httpx.HTTPError as exc:
            raise LabellingError(f"Label Studio at {self.url} unreachable while trying to {what}: {exc}",
                                 "unreachable") from exc

    def find_project(self, title: str) -> Optional[int]:
        """The id of the project with exactly this title, or None."""
        with self._call("list projects"):
            for project in self.sdk.projects.list(title=title):
                if project.title == title:
                    return int(project.id)
        return None

    def ensure_project(self, title: str, label_config: str) -> tuple[int, bool]:
        """(project id, created): reuses the project of this title, else creates it."""
        found = self.find_project(title)
        if found is not None:
            return found, False
        with self._call(f"create project {title!r}"):
            return int(self.sdk.projects.create(title=title, label_config=label_config).id), True

    def project_id(self, title: str) -> int:
        found = self.find_project(title)
        if found is None:
            raise LabellingError(f"Label Studio at {self.url} has no project titled {title!r}", "refused")
        return found

    def label_config(self, project: int) -> str:
        with self._call(f"read project {project}"):
            return str(self.sdk.projects.get(project).label_config)

    def tasks(self, project: int) -> list[dict]:
        """Every task of the project with its annotations and predictions, as plain dicts."""
        with self._call(f"list the tasks of project {project}"):
            return [_plain(t) for t in self.sdk.tasks.list(project=project, fields="all", page_size=100)]

    def import_tasks(self, project: int, tasks: list[dict]) -> list[int]:
        """Import tasks (with their predictions); returns the new task ids."""
        with self._call(f"import {len(tasks)} tasks into project {project}"):
            response = self.sdk.projects.import_tasks(project, request=tasks, return_task_ids=True)
        return [int(i) for i in (response.task_ids or [])]

    def ensure_local_storage(self, project: int, folder: Path) -> None:
        """A local-files import storage on ``folder`` (how Label Studio allows /data/local-files URLs)."""
        with self._call(f"list the local storages of project {project}"):
            known = {Path(s.path) for s in self.sdk.import_storage.local.list(project=project) if s.path}
        if folder in known:
            return
        with self._call(f"add local storage {folder}"):
            self.sdk.import_storage.local.create(project=project, path=str(folder), title=f"robot_instseg {folder.name}",
                                                 use_blob_urls=True, regex_filter=r".*\.(jpg|jpeg|png)$")

    def upload(self, project: int, image: Path) -> str:
        """Upload one image without making a task; returns the URL a task uses for it.
        (The SDK has no call for a plain upload, so this one goes through httpx with the same key.)"""
        def post(authorization: str) -> httpx.Response:
            with image.open("rb") as fh:
                return httpx.post(f"{self.url}/api/projects/{project}/import", params={"commit_to_project": "false"},
                                  files={"file": (image.name, fh)}, headers={"Authorization": authorization},
                                  timeout=120)

        try:
            r = post(f"Token {self.api_key}")
            if r.status_code in (401, 403):  # a personal access token: trade it for an access token
                r = post(f"Bearer {self._access_token()}")
            r.raise_for_status()
            upload_id = int(r.json()["file_upload_ids"][0])
            with self._call(f"read upload {upload_id}"):
                stored = self.sdk.files.get(upload_id).file
        except httpx.HTTPError as exc:
            raise LabellingError(f"Label Studio at {self.url} refused the upload of {image}: {exc}",
                                 "refused") from exc
        return "/data/" + str(stored).lstrip("/")

    def _access_token(self) -> str:
        """A short-lived access token for a personal access token (a JWT refresh token)."""
        r = httpx.post(f"{self.url}/api/token/refresh", json={"refresh": self.api_key}, timeout=30)
        r.raise_for_status()
        return str(r.json()["access"])

    def connect_backend(self, project: int, backend_url: str, title: str = "robot_instseg") -> int:
        """Connect an ML backend to the project (interactive off, predictions on import); returns its id."""
        with self._call(f"connect ML backend {backend_url}"):
            for backend in self.sdk.ml.list(project=project):
                if str(backend.url).rstrip("/") == backend_url.rstrip("/"):
                    return int(backend.id)
            backend_id = int(self.sdk.ml.create(project=project, url=backend_url, title=title,
                                                is_interactive=False).id)
            self.sdk.projects.update(project, show_collab_predictions=True, evaluate_predictions_automatically=True)
        return backend_id


def fetch_file(server_url: Optional[str], api_key: Optional[str], url: str, timeout: float = 120) -> bytes:
    """The bytes behind a task's file URL: a server path (/data/...) on ``server_url``, or an http(s) address,
    with the API key. LabellingError when it cannot be fetched."""
    if url.startswith("/"):
        if not server_url:
            raise LabellingError(f"{url}: a server path, and no Label Studio URL is known", "unreachable")
        url = server_url.rstrip("/") + url
    if urlparse(url).scheme not in ("http", "https"):
        raise LabellingError(f"file {url!r}: only http(s) and server paths can be fetched", "format")
    try:
        r = httpx.get(url, headers={"Authorization": f"Token {api_key}"} if api_key else {}, timeout=timeout,
                      follow_redirects=True)
        r.raise_for_status()
    except httpx.HTTPError as exc:
        raise LabellingError(f"cannot fetch {unquote(url)}: {exc}", "unreachable") from exc
    return r.content

# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin behind hpcansible.hpc.session_files: a role's folders, secrets and files in one task.

A session's configuration files (a job script, redis.conf, prometheus.yml, the client's
config, a password) are small and many. Written as one file, copy or template task each, every
one cost a module execution (0.15 to 0.4 s on a small machine); here they are rendered and
written in-process when SLURM's host is this machine, or with one command on it otherwise.
Templates are rendered as ansible.builtin.template renders them (trim_blocks, the role's
templates/ folder, ansible_managed).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible_collections.hpcansible.hpc.plugins.module_utils.session_files import (
    FILE_MODE,
    FOLDER_MODE,
    SessionFile,
    ValidationFailed,
    make_folders,
    parse_mode,
    remote_script,
    unchanged,
    write_file,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.session_record import new_secret

try:  # ansible_managed and the template_* variables, as ansible.builtin.template sets them
    from ansible._internal._templating._template_vars import generate_ansible_template_vars
except ImportError:  # pragma: no cover - other ansible-core releases

    def generate_ansible_template_vars(**_: Any) -> dict[str, Any]:
        return {"ansible_managed": "Ansible managed"}


FILE_KEYS = frozenset(("dest", "content", "template", "src", "mode", "validate", "enabled"))
SECRET_KEYS = frozenset(("path", "fact", "value", "length", "newline"))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("folders", "folder_mode", "secrets", "files"))
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        remote = getattr(self._connection, "transport", "local") != "local"
        writing = not self._task.check_mode
        folders = [to_text(folder) for folder in args.get("folders") or []]
        try:
            folder_mode = parse_mode(args.get("folder_mode"), FOLDER_MODE)
            facts, secret_files = self._secrets(args.get("secrets") or [], remote)
            files = secret_files + self._files(args.get("files") or [], task_vars, facts)
        except (ValueError, AnsibleError) as error:
            raise AnsibleActionFail(f"session_files: {error}") from error
        if remote:
            changed = bool(folders or files)
            if writing and changed:
                self._run_remote(remote_script(folders, files))
        elif writing:
            try:  # each file is read once, to skip it when unchanged
                changed = make_folders(folders, folder_mode)
                changed = any([write_file(item) for item in files]) or changed
            except (ValidationFailed, OSError, ValueError) as error:
                raise AnsibleActionFail(str(error)) from error
        else:
            changed = any(not Path(folder).is_dir() for folder in folders) or not all(
                unchanged(item) for item in files
            )
        result.update(changed=changed, files=[item.dest for item in files], folders=folders)
        if facts:
            result["ansible_facts"] = facts
        return result

    def _secrets(self, secrets: list, remote: bool) -> tuple[dict[str, str], list[SessionFile]]:
        """Each secret: the given value, else the one kept from an earlier run, else a new one."""
        facts: dict[str, str] = {}
        files: list[SessionFile] = []
        for secret in secrets:
            unknown = set(secret) - SECRET_KEYS
            if unknown or not secret.get("path") or not secret.get("fact"):
                raise ValueError(
                    f"a secret takes path, fact, value, length and newline (got {sorted(secret)})"
                )
            path = to_text(secret["path"])
            length = int(secret.get("length") or 32)
            value = (
                to_text(secret.get("value") or "") or self._kept(path, remote) or new_secret(length)
            )
            names = secret["fact"] if isinstance(secret["fact"], list) else [secret["fact"]]
            facts.update({to_text(name): value for name in names})
            newline = "\n" if boolean(secret.get("newline", True)) else ""
            files.append(SessionFile(path, to_bytes(value + newline)))
        return facts, files

    def _kept(self, path: str, remote: bool) -> str:
        if not remote:
            try:
                return Path(path).read_text(encoding="utf-8").strip()
            except OSError:
                return ""
        done = self._low_level_execute_command(f"cat -- {shlex.quote(path)} 2>/dev/null || true")
        return to_text(done.get("stdout", "")).strip()

    def _files(self, entries: list, task_vars: dict, facts: dict) -> list[SessionFile]:
        files = []
        for entry in entries:
            unknown = set(entry) - FILE_KEYS
            if unknown:
                raise ValueError(f"unknown file keys {sorted(unknown)} for {entry.get('dest')}")
            if not boolean(entry.get("enabled", True)):
                continue
            dest = to_text(entry.get("dest") or "")
            sources = [key for key in ("content", "template", "src") if entry.get(key) is not None]
            if not dest or len(sources) != 1:
                raise ValueError(
                    f"each file takes a dest and one of content, template, src ({dest})"
                )
            data = self._data(sources[0], entry[sources[0]], dest, task_vars, facts)
            if dest.endswith("/"):  # a folder: keep the source's name, as copy does
                dest += os.path.basename(to_text(entry[sources[0]]))
            mode = parse_mode(entry.get("mode"), FILE_MODE)
            files.append(SessionFile(dest, data, mode, to_text(entry.get("validate") or "")))
        return files

    def _data(self, kind: str, value: Any, dest: str, task_vars: dict, facts: dict) -> bytes:
        if kind == "content":
            return to_bytes(value)
        if kind == "src":
            return Path(self._find_needle("files", to_text(value))).read_bytes()
        return to_bytes(self._render(to_text(value), dest, task_vars, facts))

    def _render(self, name: str, dest: str, task_vars: dict, facts: dict) -> str:
        """The template as ansible.builtin.template renders it."""
        source = self._find_needle("templates", name)
        searchpath = []
        for folder in [*task_vars.get("ansible_search_path", []), self._loader._basedir,
                       os.path.dirname(source)]:  # fmt: skip
            searchpath += [os.path.join(folder, "templates"), folder]
        variables = {**task_vars, **facts}
        variables.update(generate_ansible_template_vars(
            path=name, fullpath=source, dest_path=dest,
            include_ansible_managed="ansible_managed" not in variables,
        ))  # fmt: skip
        templar = self._templar.copy_with_new_env(
            searchpath=searchpath, available_variables=variables
        )
        text = trust_as_template(self._loader.get_text_file_contents(source))
        rendered = templar.template(
            text, escape_backslashes=False, overrides={"trim_blocks": True, "lstrip_blocks": False}
        )
        return to_text(rendered if rendered is not None else "")

    def _run_remote(self, script: str) -> None:
        done = self._low_level_execute_command(f"sh -c {shlex.quote(script)}")
        if done.get("rc", 1) != 0:
            raise AnsibleActionFail(
                f"writing the session's files on SLURM's host failed: "
                f"{to_text(done.get('stderr') or done.get('stdout')).strip()}"
            )

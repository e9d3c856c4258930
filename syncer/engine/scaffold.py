"""`syncer init`: a new repository that validates at once — syncer.yaml, one template,
one definition — with editor schemas linked. Existing files are never overwritten."""

from __future__ import annotations

import re
from pathlib import Path

from syncer.core.errors import UsageError

_SCHEMAS = Path(__file__).resolve().parents[1] / "stages" / "schemas"

_FILES = {
    "syncer.yaml": """\
        # yaml-language-server: $schema={schemas}/project.schema.json
        project: {project}
        servers:
          local: {{environment: development}}   # DOCKER_HOST or the local socket
        defaults: {{server: local, profile: development}}
        prune: true
        """,
    "templates/web.yaml": """\
        # yaml-language-server: $schema={schemas}/template.schema.json
        id: web
        name: Static web server
        description: busybox httpd serving a greeting
        version: "1.0"
        taxonomy: {{kingdom: assets, family: web, species: httpd}}
        inputs:
          type: object
          properties:
            greeting: {{type: string, default: hello}}
            port: {{type: integer, minimum: 1, maximum: 65535, default: 8080}}
        spec:
          image: busybox:1.36
          command: [sh, -c, "echo '${{inputs.greeting}}' > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
          ports: [{{container_port: 80, host_port: "${{inputs.port}}"}}]
        profiles:
          development: {{resources: {{memory: 64m}}}}
          production: {{resources: {{memory: 128m}}, restart: always}}
        """,
    "definitions/web.yaml": """\
        # yaml-language-server: $schema={schemas}/definition.schema.json
        name: web
        template: web
        params: {{greeting: hello from syncer}}
        """,
}


def init_repository(directory: Path, project: str | None = None) -> list[Path]:
    """Write the starter files into `directory` (created if missing); returns what was written."""
    name = project or re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-") or "my-infra"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise UsageError(f"project name '{name}' must be lowercase letters, digits, '-' or '_' (use --project)")
    clashes = [rel for rel in _FILES if (directory / rel).exists()]
    if clashes:
        raise UsageError(f"{directory} already has {', '.join(clashes)}: nothing written (init never overwrites)")
    written = []
    for rel, text in _FILES.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "\n".join(line.removeprefix("        ") for line in text.splitlines()) + "\n"
        path.write_text(body.format(project=name, schemas=_SCHEMAS.as_posix()), encoding="utf-8")
        written.append(path)
    return written

"""Chat notifications (issue 13): a webhook with `format: slack | discord | ntfy` posts a
readable message in that service's documented incoming-webhook shape, secrets masked."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_webhooks import Receiver, apply, box, cli, hooks_yaml, receiver  # noqa: F401
from tests.helpers import simple_repo

FAILING = """
    id: failer
    version: "1"
    inputs: {type: object, properties: {token: {type: string, format: password, writeOnly: true}}}
    spec:
      image: syncer-local/busybox:latest
      command: [sh, -c, "echo dsn=postgres://app:$TOKEN@db >&2; exit 3"]
      env: {TOKEN: "${inputs.token}"}
    """


def test_slack_discord_and_ntfy_get_their_own_shapes(tmp_path: Path, project: str,
                                                     receiver: Receiver) -> None:  # noqa: F811
    receiver.up()
    web = f"{project}-web"
    repo = simple_repo(tmp_path / "r", project, definitions={"web": box(web)}, extra=hooks_yaml(
        f"{{url: '{receiver.url('/slack')}', format: slack, events: [deployment.success]}}",
        f"{{url: '{receiver.url('/discord')}', format: discord, events: [deployment.success]}}",
        f"{{url: '{receiver.url('/ntfy/syncer-alerts')}', format: ntfy, events: [deployment.success]}}"))
    apply(repo, tmp_path / "s")
    by_path = {r.path: r.json for r in receiver.requests}
    slack = by_path["/slack"]
    assert f"deployment success: {web}" in slack["text"] and "on local" in slack["text"]
    assert slack["blocks"][0]["type"] == "section" and slack["blocks"][0]["text"]["type"] == "mrkdwn"
    discord = by_path["/discord"]
    assert discord["content"].startswith(f"[{project}] deployment.success")
    assert discord["embeds"][0]["color"] == 0x2EB67D and web in discord["embeds"][0]["description"]
    ntfy = by_path["/ntfy/"]  # JSON publishing goes to the server root and names the topic
    assert ntfy["topic"] == "syncer-alerts" and ntfy["priority"] == 3 and web in ntfy["message"]
    assert "white_check_mark" in ntfy["tags"]


def test_a_failure_reads_with_its_first_error_line_and_no_secret(tmp_path: Path, project: str,
                                                                  receiver: Receiver) -> None:  # noqa: F811
    receiver.up()
    name = f"{project}-job"
    repo = simple_repo(tmp_path / "r", project, templates={"failer": FAILING},
                       definitions={"f": f"name: {name}\ntemplate: failer\nparams: {{token: {{secret: CHAT_TOK}}}}\n"},
                       extra="secrets: {env: [CHAT_TOK]}\n" + hooks_yaml(
                           f"{{url: '{receiver.url('/slack')}', format: slack, events: [deployment.failed]}}"))
    # --settle: the container exits at once, but without a healthcheck "running" right after
    # its start is success; it must stay up a moment for its exit to fail the deployment
    out = cli(repo, tmp_path / "s", "apply", "--auto-approve", "--stop-timeout", "1", "--settle", "2",
              env={"CHAT_TOK": "chat-canary-81fa"}, ok=False)
    assert out.returncode == 1
    [message] = [r.json for r in receiver.requests if r.path == "/slack"]
    assert "❌ deployment failed" in message["text"] and "error: " in message["text"]
    assert "chat-canary-81fa" not in message["text"]


def test_an_unknown_event_name_or_format_is_a_located_error(tmp_path: Path) -> None:
    repo = simple_repo(tmp_path / "r", "t-chat", extra=hooks_yaml(
        "{url: 'http://127.0.0.1:9/x', events: [deployment.sucess]}", "{url: 'http://127.0.0.1:9/y', format: teams}"))
    out = cli(repo, tmp_path / "s", "validate", ok=False)
    assert out.returncode == 1 and "syncer.yaml:3:" in out.stderr and "deployment.sucess" in out.stderr
    assert "syncer.yaml:4:" in out.stderr and "teams" in out.stderr

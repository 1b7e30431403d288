"""Drives a real Canaille (PyPI `canaille`, SQLite backend, SCIM client on) for
Liaison's tests: one JSON command per line on stdin, one JSON answer per line
on stdout. Canaille pushes every change to its trusted OIDC client whose
`client_uri` is a Liaison organisation's SCIM base URL, with the bearer token
of the client's Canaille token, set to a Liaison token.

Commands (each answers {"ok": true, ...} or {"ok": false, "error": ...}, and
"warnings": the messages Canaille logged, where it reports failed SCIM pushes):
  {"op": "setup", "db": PATH, "scim_url": URL, "token": LIAISON_TOKEN}
  {"op": "create_user", "user_name", "given_name", "family_name", "email"}  -> "id"
  {"op": "update_user", "id", any of "given_name", "family_name", "email", "display_name"}
  {"op": "delete_user", "id"}
  {"op": "create_group", "display_name", "members": [user ids]}            -> "id"
  {"op": "update_group", "id", any of "display_name", "members"}
  {"op": "delete_group", "id"}
"""

import datetime
import json
import logging
import sys
import traceback


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def main():
    from canaille import create_app
    from canaille.app import models
    from canaille.backends import Backend

    app = None
    collect = Collect()
    state = {}

    def setup(cmd):
        nonlocal app
        config = {
            "SECRET_KEY": "liaison-tests",
            "SERVER_NAME": "canaille.test",
            "TESTING": True,
            "CANAILLE": {"LOGGING": None},
            "CANAILLE_SQL": {"DATABASE_URI": f"sqlite:///{cmd['db']}", "AUTO_MIGRATE": True},
            "CANAILLE_SCIM": {"ENABLE_CLIENT": True, "ENABLE_SERVER": True},
            "CANAILLE_OIDC": {"TRUSTED_DOMAINS": ["127.0.0.1"]},
        }
        app = create_app(config, init_backend=True)
        app.logger.addHandler(collect)
        logging.getLogger().addHandler(collect)
        with app.app_context(), app.backend.session():
            client = models.Client(
                client_id="liaison",
                client_name="Liaison",
                client_uri=cmd["scim_url"],
                redirect_uris=[cmd["scim_url"]],
                grant_types=["authorization_code"],
                response_types=["code"],
                scope=["openid", "profile", "email", "groups"],
                token_endpoint_auth_method="client_secret_basic",
                client_id_issued_at=datetime.datetime.now(datetime.timezone.utc),
            )
            Backend.instance.save(client)
            # The token Canaille's SCIM client presents: a Liaison token, for
            # ten years (Canaille makes a random one when none is valid).
            token = models.Token(
                token_id="liaison-scim",
                access_token=cmd["token"],
                subject=None,
                audience=[client],
                client=client,
                refresh_token="unused",
                scope=["openid", "profile"],
                issue_date=datetime.datetime.now(datetime.timezone.utc),
                lifetime=10 * 365 * 24 * 3600,
            )
            Backend.instance.save(token)
        return {}

    def get(model, id):
        obj = Backend.instance.get(model, id)
        if obj is None:
            raise KeyError(f"no {model.__name__} {id}")
        return obj

    def run(cmd):
        op = cmd["op"]
        if op == "setup":
            return setup(cmd)
        with app.app_context(), app.backend.session():
            if op == "create_user":
                u = models.User(
                    user_name=cmd["user_name"],
                    given_name=cmd.get("given_name"),
                    family_name=cmd.get("family_name"),
                    formatted_name=" ".join(
                        x for x in [cmd.get("given_name"), cmd.get("family_name")] if x
                    ) or None,
                    display_name=cmd.get("display_name"),
                    emails=[cmd["email"]] if cmd.get("email") else [],
                )
                Backend.instance.save(u)
                return {"id": u.id}
            if op == "update_user":
                u = get(models.User, cmd["id"])
                for k in ["given_name", "family_name", "display_name"]:
                    if k in cmd:
                        setattr(u, k, cmd[k])
                if "email" in cmd:
                    u.emails = [cmd["email"]]
                Backend.instance.save(u)
                return {}
            if op == "delete_user":
                Backend.instance.delete(get(models.User, cmd["id"]))
                return {}
            if op == "create_group":
                g = models.Group(
                    display_name=cmd["display_name"],
                    members=[get(models.User, m) for m in cmd.get("members", [])],
                )
                Backend.instance.save(g)
                return {"id": g.id}
            if op == "update_group":
                g = get(models.Group, cmd["id"])
                if "display_name" in cmd:
                    g.display_name = cmd["display_name"]
                if "members" in cmd:
                    g.members = [get(models.User, m) for m in cmd["members"]]
                Backend.instance.save(g)
                return {}
            if op == "delete_group":
                Backend.instance.delete(get(models.Group, cmd["id"]))
                return {}
        raise ValueError(f"unknown op {op}")

    for line in sys.stdin:
        if not line.strip():
            continue
        collect.messages = []
        try:
            answer = {"ok": True, **run(json.loads(line))}
        except Exception as e:  # reported to the test, which fails on it
            answer = {"ok": False, "error": f"{e.__class__.__name__}: {e}", "trace": traceback.format_exc()}
        answer["warnings"] = collect.messages
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

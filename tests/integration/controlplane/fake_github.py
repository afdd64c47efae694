"""A stateful fake of the GitHub bits the control plane uses, speaking GitHub's wire shapes.

REST: ``GET /user``, ``GET /user/orgs`` (``per_page``/``page`` with ``Link`` headers,
30 per page by default like GitHub). OAuth: ``GET /login/oauth/authorize`` (redirects
straight back with a code, as if the user clicked "Authorize") and ``POST
/login/oauth/access_token`` (200 + ``{"error": ...}`` on a bad code, like GitHub).
State is inspectable (``calls``); ``fail_status`` makes the API answer that status.
Refuses what GitHub refuses: unknown tokens (401 Bad credentials), reused or unknown
codes, the wrong client secret.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from quart import Quart, request


@dataclass
class FakeUser:
    login: str
    id: int
    orgs: list[str] = field(default_factory=list)


class FakeGitHub:
    def __init__(self, *, client_id: str = "cid", client_secret: str = "csecret") -> None:  # noqa: S107
        self.client_id = client_id
        self.client_secret = client_secret
        self.users: dict[str, FakeUser] = {}
        self.calls: Counter[str] = Counter()
        self.fail_status: int | None = None
        self.link_base: str | None = None
        """Fault switch: pagination links point at this base instead of our own."""
        self.authorize_as: str | None = None
        """The token that the next OAuth authorization grants."""
        self.authorize_requests: list[dict[str, str]] = []
        self._codes: dict[str, str] = {}
        self.base_url = ""
        self.app = self._build()

    def add_user(self, token: str, login: str, *, orgs: list[str] | None = None) -> None:
        self.users[token] = FakeUser(login=login, id=1000 + len(self.users), orgs=orgs or [])

    def _user(self) -> FakeUser | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return self.users.get(token.strip())

    def _build(self) -> Quart:
        app = Quart("fake_github")
        bad = {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}

        @app.get("/user")
        async def user() -> object:
            self.calls["/user"] += 1
            if self.fail_status:
                return {"message": "fault"}, self.fail_status
            u = self._user()
            if u is None:
                return bad, 401
            return {"login": u.login, "id": u.id, "type": "User"}

        @app.get("/user/orgs")
        async def user_orgs() -> object:
            self.calls["/user/orgs"] += 1
            if self.fail_status:
                return {"message": "fault"}, self.fail_status
            u = self._user()
            if u is None:
                return bad, 401
            per_page = min(int(request.args.get("per_page", 30)), 100)
            page = int(request.args.get("page", 1))
            chunk = u.orgs[(page - 1) * per_page : page * per_page]
            last = max(1, -(-len(u.orgs) // per_page))
            links = []
            base = f"{self.link_base or self.base_url}/user/orgs"
            if page < last:
                for rel, number in (("next", page + 1), ("last", last)):
                    query = urlencode({"per_page": per_page, "page": number})
                    links.append(f'<{base}?{query}>; rel="{rel}"')
            headers = {"Link": ", ".join(links)} if links else {}
            return [{"login": o, "id": hash(o) % 10**6} for o in chunk], 200, headers

        @app.get("/login/oauth/authorize")
        async def authorize() -> object:
            args = dict(request.args)
            self.authorize_requests.append(args)
            if args.get("client_id") != self.client_id or self.authorize_as is None:
                return "unknown client", 404
            code = secrets.token_hex(10)
            self._codes[code] = self.authorize_as
            query = urlencode({"code": code, "state": args.get("state", "")})
            target = f"{args['redirect_uri']}?{query}"
            return "", 302, {"Location": target}

        @app.post("/login/oauth/access_token")
        async def access_token() -> object:
            form = await request.form
            secret_ok = form.get("client_secret") == self.client_secret
            if form.get("client_id") != self.client_id or not secret_ok:
                return {"error": "incorrect_client_credentials"}
            token = self._codes.pop(form.get("code", ""), None)
            if token is None:
                return {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                }
            return {"access_token": token, "token_type": "bearer", "scope": "read:org,read:user"}

        return app

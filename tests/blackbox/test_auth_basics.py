"""Authentication and user management on the wire: §0.3, §1.3-§1.14, §5.4, D12."""

import re
import time
import uuid

import pytest

from conftest import (REFRESH_TOKEN_RE, TOKEN_RESPONSE_KEYS, USER_PUBLIC_KEYS, UUID4_RE, Api, assert_422,
                      assert_compact, assert_detail, assert_json_ct, assert_ts, assert_www_auth, jwt_parts,
                      jwt_signature_ok, login, make_jwt, mint_token, next_source_ip, register_user, unique)


# ------------------------------------------------------------------------------------------------
# /auth/login
# ------------------------------------------------------------------------------------------------


def test_login_success_shape(server, tenant):
    username, password, _ = register_user(tenant.admin, ["read", "write"])
    r = login(server, username, password)
    assert r.status_code == 200, r.text
    assert_json_ct(r)
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == TOKEN_RESPONSE_KEYS
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 600
    assert body["refresh_token_secondary"] is None
    assert REFRESH_TOKEN_RE.match(body["refresh_token"]), body["refresh_token"]
    assert body["access_token"].count(".") == 2


def test_login_token_claims(server, rw):
    """§5.4: HS256 with the configured secret; sub/username/permissions/exp/iat/jti."""
    header, claims = jwt_parts(rw.token)
    assert header.get("alg") == "HS256"
    assert jwt_signature_ok(rw.token, server.secret)
    assert claims["sub"] == rw.user_id
    assert claims["username"] == rw.username
    assert sorted(claims["permissions"]) == ["read", "write"]
    assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 300
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"]), claims["jti"]


def test_login_each_token_has_unique_jti(server, rw):
    t2 = rw.fresh_token()
    assert jwt_parts(t2)[1]["jti"] != jwt_parts(rw.token)[1]["jti"]


def test_login_expires_in_follows_option(server_factory):
    srv = server_factory("--access-token-expire-minutes", "1")
    r = login(srv, srv.admin_username, srv.admin_password)
    assert r.status_code == 200, r.text
    assert r.json()["expires_in"] == 60
    claims = jwt_parts(r.json()["access_token"])[1]
    assert claims["exp"] - claims["iat"] == 60


def test_login_wrong_password(server, rw):
    r = login(server, rw.username, rw.password + "x")
    assert_detail(r, 401, "Incorrect username or password")
    assert_www_auth(r)


def test_login_unknown_user(server):
    r = login(server, unique("nobody"), "whatever-password")
    assert_detail(r, 401, "Incorrect username or password")
    assert_www_auth(r)


def test_login_missing_password(server, rw):
    with Api(server, None, next_source_ip()).session as s:
        r = s.post(server.url("/auth/login"), data={"username": rw.username, "grant_type": "password"}, timeout=10)
    assert_422(r, loc_contains="password", type_="missing")


def test_login_missing_username(server):
    with Api(server, None, next_source_ip()).session as s:
        r = s.post(server.url("/auth/login"), data={"password": "x" * 10}, timeout=10)
    assert_422(r, loc_contains="username", type_="missing")


def test_login_json_body_is_422(server, rw):
    with Api(server, None, next_source_ip()).session as s:
        r = s.post(server.url("/auth/login"), json={"username": rw.username, "password": rw.password}, timeout=10)
    assert_422(r)


def test_login_bad_grant_type_is_422(server, rw):
    r = login(server, rw.username, rw.password, extra={"grant_type": "client_credentials"})
    assert_422(r, loc_contains="grant_type")


def test_login_without_grant_type_ok(server, tenant):
    username, password, _ = register_user(tenant.admin, ["read"])
    with Api(server, None, next_source_ip()).session as s:
        r = s.post(server.url("/auth/login"), data={"username": username, "password": password}, timeout=10)
    assert r.status_code == 200, r.text


def test_login_inactive_user(server, tenant):
    username, password, body = register_user(tenant.admin, ["read"])
    r = tenant.admin.api.patch(f"/auth/users/{body['user_id']}", json={"is_active": False})
    assert r.status_code == 200, r.text
    r = login(server, username, password)
    assert_detail(r, 403, "User account is inactive")


# ------------------------------------------------------------------------------------------------
# Bearer resolution (§0.3)
# ------------------------------------------------------------------------------------------------


def test_me_shape(rw):
    r = rw.api.get("/auth/me")
    assert r.status_code == 200
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == USER_PUBLIC_KEYS
    assert UUID4_RE.match(body["user_id"])
    assert body["user_id"] == rw.user_id
    assert body["username"] == rw.username
    assert body["email"] == f"{rw.username}@example.org"
    assert body["is_active"] is True
    assert_ts(body["created_at"])
    assert body["permissions"] == ["read", "write"]
    assert isinstance(body["owned_topics"], list)
    assert "hashed_password" not in r.text


def test_me_without_auth(anon):
    r = anon.get("/auth/me")
    assert_detail(r, 401, "Not authenticated")
    assert_www_auth(r)


def test_me_non_bearer_scheme(anon, rw):
    r = anon.get("/auth/me", headers={"Authorization": f"Basic {rw.token}"})
    assert_detail(r, 401, "Not authenticated")
    assert_www_auth(r)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_me_scheme_case_insensitive(anon, rw, scheme):
    r = anon.get("/auth/me", headers={"Authorization": f"{scheme} {rw.token}"})
    assert r.status_code == 200, r.text


def test_me_garbage_token(anon):
    r = anon.get("/auth/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert_detail(r, 401, "Invalid or expired token")
    assert_www_auth(r)


def test_me_token_with_wrong_secret(anon, rw):
    claims = jwt_parts(rw.token)[1]
    forged = make_jwt("another-secret-that-is-long-enough-1234567890", claims)
    r = anon.get("/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert_detail(r, 401, "Invalid or expired token")
    assert_www_auth(r)


def test_me_expired_token(server, anon, rw):
    expired = mint_token(server, rw, exp_in=-30, iat_offset=-700)
    r = anon.get("/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert_detail(r, 401, "Invalid or expired token")
    assert_www_auth(r)


def test_reference_format_token_accepted(server, anon, rw):
    """§5.4: an HS256 token with the documented claims, signed with the configured secret, is valid."""
    tok = mint_token(server, rw, exp_in=120)
    r = anon.get("/auth/me", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == rw.user_id


def test_authorization_uses_stored_permissions_not_claims(server, anon, tenant):
    """§0.3: authorization uses the stored user's permissions, not the JWT's `permissions` claim."""
    user = tenant.user("ro")
    claims = jwt_parts(user.token)[1]
    claims["permissions"] = ["admin", "read", "write"]
    claims["jti"] = uuid.uuid4().hex
    forged = make_jwt(server.secret, claims)
    r = anon.post("/api/v1/messages", json={"topic": unique(), "payload": {}},
                  headers={"Authorization": f"Bearer {forged}"})
    assert_detail(r, 403, "Permission 'write' required")


def test_deleted_user_token(server, tenant):
    user = tenant.new_user(["read", "write"], prefix="doomed")
    r = tenant.admin.api.delete(f"/auth/users/{user.user_id}")
    assert r.status_code == 204, r.text
    r = user.api.get("/auth/me")
    assert_detail(r, 401, "User not found")
    assert_www_auth(r)


# ------------------------------------------------------------------------------------------------
# /auth/logout (§1.5, D10 for HTTP)
# ------------------------------------------------------------------------------------------------


def test_logout_revokes_only_that_token(server, rw):
    token = rw.fresh_token()
    api = rw.api.with_token(token)
    assert api.get("/auth/me").status_code == 200
    r = api.post("/auth/logout")
    assert r.status_code == 204, r.text
    assert r.content == b""
    r = api.get("/auth/me")
    assert_detail(r, 401, "Token has been revoked")
    assert_www_auth(r)
    r = api.post("/auth/logout")
    assert_detail(r, 401, "Token has been revoked")
    # the user's other tokens are untouched
    assert rw.api.get("/auth/me").status_code == 200


def test_logout_without_auth(anon):
    r = anon.post("/auth/logout")
    assert_detail(r, 401, "Not authenticated")


# ------------------------------------------------------------------------------------------------
# /auth/register (§1.4)
# ------------------------------------------------------------------------------------------------


def test_register_shape(tenant):
    name = unique("reg")
    r = tenant.admin.api.post("/auth/register", json={"username": name, "password": "12345678",
                                                      "email": "x@example.org", "permissions": ["read"]})
    assert r.status_code == 201, r.text
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == USER_PUBLIC_KEYS
    assert UUID4_RE.match(body["user_id"])
    assert body["username"] == name
    assert body["email"] == "x@example.org"
    assert body["is_active"] is True
    assert_ts(body["created_at"])
    assert body["permissions"] == ["read"]
    assert body["owned_topics"] == []
    assert "password" not in r.text


def test_register_defaults(tenant):
    name = unique("reg")
    r = tenant.admin.api.post("/auth/register", json={"username": name, "password": "12345678"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] is None
    assert body["permissions"] == []


def test_register_duplicate_username(tenant):
    name = unique("dup")
    r = tenant.admin.api.post("/auth/register", json={"username": name, "password": "12345678"})
    assert r.status_code == 201
    r = tenant.admin.api.post("/auth/register", json={"username": name, "password": "abcdefgh"})
    assert_detail(r, 400, f"Username '{name}' already exists")


@pytest.mark.parametrize("body,loc", [
    ({"username": "ab", "password": "12345678"}, "username"),
    ({"username": "u" * 51, "password": "12345678"}, "username"),
    ({"username": "UNIQUE", "password": "1234567"}, "password"),
    ({"username": "UNIQUE", "password": "12345678", "permissions": ["superuser"]}, "permissions"),
    ({"username": "UNIQUE", "password": "12345678", "permissions": "read"}, "permissions"),
    ({"password": "12345678"}, "username"),
    ({"username": "UNIQUE"}, "password"),
])
def test_register_validation(tenant, body, loc):
    body = dict(body)
    if body.get("username") == "UNIQUE":
        body["username"] = unique("v")
    r = tenant.admin.api.post("/auth/register", json=body)
    assert_422(r, loc_contains=loc)


@pytest.mark.parametrize("length", [3, 50])
def test_register_username_length_bounds_ok(tenant, length):
    name = uuid.uuid4().hex * 2
    r = tenant.admin.api.post("/auth/register", json={"username": name[:length], "password": "12345678"})
    assert r.status_code == 201, r.text


def test_register_duplicate_permissions_allowed(tenant):
    r = tenant.admin.api.post("/auth/register", json={"username": unique("dp"), "password": "12345678",
                                                      "permissions": ["read", "read"]})
    assert r.status_code == 201, r.text


def test_register_requires_admin(rw, anon):
    body = {"username": unique("x"), "password": "12345678"}
    assert_detail(rw.api.post("/auth/register", json=body), 403, "Permission 'admin' required")
    r = anon.post("/auth/register", json=body)
    assert_detail(r, 401, "Not authenticated")


# ------------------------------------------------------------------------------------------------
# Admin user management (§1.7-§1.10, D12)
# ------------------------------------------------------------------------------------------------


def test_users_list(tenant, rw):
    r = tenant.admin.api.get("/auth/users")
    assert r.status_code == 200
    users = r.json()
    assert isinstance(users, list)
    mine = [u for u in users if u["user_id"] == rw.user_id]
    assert len(mine) == 1
    assert list(mine[0].keys()) == USER_PUBLIC_KEYS
    assert "hashed_password" not in r.text


def test_users_list_requires_admin(rw):
    assert_detail(rw.api.get("/auth/users"), 403, "Permission 'admin' required")


def test_users_stats(tenant):
    r = tenant.admin.api.get("/auth/users/stats")
    assert r.status_code == 200
    body = r.json()
    assert list(body.keys()) == ["total_users", "active_users"]
    assert isinstance(body["total_users"], int) and isinstance(body["active_users"], int)
    assert 1 <= body["active_users"] <= body["total_users"]


def test_users_stats_requires_admin(rw):
    assert_detail(rw.api.get("/auth/users/stats"), 403, "Permission 'admin' required")


def test_patch_user_partial_update(tenant):
    user = tenant.new_user(["read", "write"], prefix="patch")
    admin = tenant.admin.api
    r = admin.patch(f"/auth/users/{user.user_id}", json={})
    assert r.status_code == 200, r.text
    assert list(r.json().keys()) == USER_PUBLIC_KEYS
    assert r.json()["permissions"] == ["read", "write"]
    r = admin.patch(f"/auth/users/{user.user_id}", json={"email": "new@example.org"})
    assert r.status_code == 200
    assert r.json()["email"] == "new@example.org"
    assert r.json()["permissions"] == ["read", "write"]
    assert r.json()["username"] == user.username


def test_patch_permissions_take_effect_next_request(tenant):
    """D12: a permission change applies on the very next request of that user."""
    user = tenant.new_user(["read", "write"], prefix="perm")
    t = unique()
    user.api.publish(t)
    r = tenant.admin.api.patch(f"/auth/users/{user.user_id}", json={"permissions": ["read"]})
    assert r.status_code == 200
    r = user.api.post("/api/v1/messages", json={"topic": t, "payload": {}})
    assert_detail(r, 403, "Permission 'write' required")


def test_patch_deactivate_takes_effect_next_request(tenant):
    """D12 + §0.3 step 5."""
    user = tenant.new_user(["read"], prefix="deact")
    assert user.api.get("/auth/me").status_code == 200
    r = tenant.admin.api.patch(f"/auth/users/{user.user_id}", json={"is_active": False})
    assert r.status_code == 200
    assert r.json()["is_active"] is False
    assert_detail(user.api.get("/auth/me"), 403, "User is inactive")


def test_patch_password_changes_login(server, tenant):
    user = tenant.new_user(["read"], prefix="pwchg")
    r = tenant.admin.api.patch(f"/auth/users/{user.user_id}", json={"password": "brand-new-password"})
    assert r.status_code == 200
    assert login(server, user.username, user.password).status_code == 401
    assert login(server, user.username, "brand-new-password").status_code == 200


def test_patch_validation(tenant, rw):
    assert_422(tenant.admin.api.patch(f"/auth/users/{rw.user_id}", json={"password": "short"}))
    assert_422(tenant.admin.api.patch(f"/auth/users/{rw.user_id}", json={"permissions": ["root"]}))


def test_patch_unknown_user(tenant):
    uid = str(uuid.uuid4())
    assert_detail(tenant.admin.api.patch(f"/auth/users/{uid}", json={}), 404, f"User with ID '{uid}' not found")


def test_patch_requires_admin(rw):
    assert_detail(rw.api.patch(f"/auth/users/{rw.user_id}", json={"permissions": ["admin"]}), 403,
                  "Permission 'admin' required")


def test_delete_user(tenant):
    user = tenant.new_user(["read"], prefix="del")
    r = tenant.admin.api.delete(f"/auth/users/{user.user_id}")
    assert r.status_code == 204
    assert r.content == b""
    assert_detail(tenant.admin.api.delete(f"/auth/users/{user.user_id}"), 404,
                  f"User with ID '{user.user_id}' not found")


def test_delete_self_refused(tenant):
    assert_detail(tenant.admin.api.delete(f"/auth/users/{tenant.admin.user_id}"), 400,
                  "Cannot delete your own user account")


def test_delete_requires_admin(rw, other):
    assert_detail(rw.api.delete(f"/auth/users/{other.user_id}"), 403, "Permission 'admin' required")


# ------------------------------------------------------------------------------------------------
# Permission matrix (§5.1) and precedence (§0.3)
# ------------------------------------------------------------------------------------------------


def test_read_only_cannot_publish(ro):
    r = ro.api.post("/api/v1/messages", json={"topic": unique(), "payload": {}})
    assert_detail(r, 403, "Permission 'write' required")
    r = ro.api.post("/api/v1/messages/bulk", json={"messages": [{"topic": unique(), "payload": {}}]})
    assert_detail(r, 403, "Permission 'write' required")
    r = ro.api.post("/api/v1/topics", json={"topic_name": unique()})
    assert_detail(r, 403, "Permission 'write' required")


def test_write_only_cannot_poll(wo):
    r = wo.api.post("/messages/poll", json={"topics": [unique()], "timeout": 1})
    assert_detail(r, 403, "Permission 'read' required")


def test_no_permission_user_can_use_bearer_routes(tenant):
    user = tenant.user("none")
    assert user.api.get("/auth/me").status_code == 200
    r = user.api.get("/api/v1/topics")
    assert r.status_code == 200 and r.json() == []
    assert user.api.get("/messages/poll/stats").status_code == 200
    name = unique()
    assert_detail(user.api.get(f"/api/v1/topics/{name}"), 404, f"Topic '{name}' not found")
    r = user.api.post("/messages/poll", json={"topics": [name], "timeout": 1})
    assert_detail(r, 403, "Permission 'read' required")


def test_auth_before_validation(anon, ro):
    """401/403 from dependencies come before 422 from schema validation."""
    bad = {"topic": "", "payload": []}
    assert_detail(anon.post("/api/v1/messages", json=bad), 401, "Not authenticated")
    assert_detail(ro.api.post("/api/v1/messages", json=bad), 403, "Permission 'write' required")


def test_unparseable_json_before_auth(anon):
    """§0.3: a body that is not JSON is rejected with 422 json_invalid before authentication runs."""
    r = anon.post("/api/v1/messages", data=b'{"topic": ', headers={"Content-Type": "application/json"})
    assert_422(r, type_="json_invalid")


# ------------------------------------------------------------------------------------------------
# Refresh tokens, revoke, sessions (§1.11-§1.14)
# ------------------------------------------------------------------------------------------------


def _refresh(api: Api, token: str):
    return api.post("/auth/token/refresh", json={"refresh_token": token}, auth=False)


def test_refresh_rotation_and_replay(server, tenant):
    user = tenant.new_user(["read", "write"], prefix="refresh")
    api = Api(server, None, next_source_ip())
    r = _refresh(api, user.refresh_token)
    assert r.status_code == 200, r.text
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == TOKEN_RESPONSE_KEYS
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 600
    assert body["refresh_token_secondary"] is None
    assert REFRESH_TOKEN_RE.match(body["refresh_token"])
    assert body["refresh_token"] != user.refresh_token
    me = api.with_token(body["access_token"]).get("/auth/me")
    assert me.status_code == 200 and me.json()["user_id"] == user.user_id
    # replaying the rotated token fails and kills the whole chain, including the new head
    r = _refresh(api, user.refresh_token)
    assert_detail(r, 401, "invalid refresh token")
    assert_www_auth(r)
    assert_detail(_refresh(api, body["refresh_token"]), 401, "invalid refresh token")


@pytest.mark.parametrize("token", ["no-dot-here", ".secret", "jti.", f"{uuid.uuid4()}.{'A' * 43}"])
def test_refresh_rejects_bad_tokens(server, token):
    r = _refresh(Api(server, None, next_source_ip()), token)
    assert_detail(r, 401, "invalid refresh token")
    assert_www_auth(r)


def test_refresh_missing_field(server):
    r = Api(server, None, next_source_ip()).post("/auth/token/refresh", json={})
    assert_422(r, loc_contains="refresh_token")


def test_revoke(server, tenant):
    user = tenant.new_user(["read"], prefix="revoke")
    api = Api(server, None, next_source_ip())
    assert_detail(api.post("/auth/token/revoke", json={"refresh_token": "garbage"}), 400, "malformed refresh token")
    unknown = f"{uuid.uuid4()}.{'B' * 43}"
    r = api.post("/auth/token/revoke", json={"refresh_token": unknown})
    assert r.status_code == 204
    # wrong secret for a real jti: 204 but nothing revoked
    jti = user.refresh_token.split(".", 1)[0]
    r = api.post("/auth/token/revoke", json={"refresh_token": f"{jti}.{'C' * 43}"})
    assert r.status_code == 204
    r = api.post("/auth/token/revoke", json={"refresh_token": user.refresh_token})
    assert r.status_code == 204
    assert r.content == b""
    assert_detail(_refresh(api, user.refresh_token), 401, "invalid refresh token")


def test_sessions(server, tenant):
    user = tenant.new_user(["read"], prefix="sess")
    r = user.api.get("/auth/sessions")
    assert r.status_code == 200
    sessions = r.json()
    assert len(sessions) == 1
    s = sessions[0]
    assert list(s.keys()) == ["jti", "issued_at", "expires_at", "last_used_at", "client_hint"]
    assert s["jti"] == user.refresh_token.split(".", 1)[0]
    assert_ts(s["issued_at"])
    assert_ts(s["expires_at"])
    assert s["last_used_at"] is None
    assert s["client_hint"] == "password-login"
    assert_detail(user.api.delete(f"/auth/sessions/{uuid.uuid4()}"), 404, "session not found")
    r = user.api.delete(f"/auth/sessions/{s['jti']}")
    assert r.status_code == 204
    assert user.api.get("/auth/sessions").json() == []
    assert_detail(_refresh(Api(server, None, next_source_ip()), user.refresh_token), 401, "invalid refresh token")


def test_sessions_of_other_user_not_deletable(rw, other):
    other_jti = other.refresh_token.split(".", 1)[0]
    assert_detail(rw.api.delete(f"/auth/sessions/{other_jti}"), 404, "session not found")


# ------------------------------------------------------------------------------------------------
# OIDC disabled; the device flow without it (what clients may call; §5.7, §5.8)
# ------------------------------------------------------------------------------------------------


def test_oidc_providers_empty_when_disabled(anon):
    r = anon.get("/auth/oidc/providers")
    assert r.status_code == 200
    assert r.json() == []


def test_device_flow_available_without_oidc(anon):
    """Unlike the reference (400 device_authorization_unavailable without OIDC), Magnetar's device
    flow always works: approval happens on its own sign-in page (test_device_flow.py)."""
    r = anon.post("/auth/device/code", data={"client_hint": "bb-test"})
    assert r.status_code == 200, r.text
    assert list(r.json().keys()) == ["device_code", "user_code", "verification_uri",
                                     "verification_uri_complete", "expires_in", "interval"]


def test_logout_does_not_look_up_the_user(server, tenant):
    """§1.5: logout needs a decodable, non-revoked JWT only; a deleted user's token still logs out."""
    user = tenant.new_user(["read"], prefix="gone")
    assert tenant.admin.api.delete(f"/auth/users/{user.user_id}").status_code == 204
    r = user.api.post("/auth/logout")
    assert r.status_code == 204, r.text


def test_refresh_for_inactive_user(server, tenant):
    """§1.11: owner inactive -> 401 {"detail":"user not found"} (no WWW-Authenticate), token revoked."""
    user = tenant.new_user(["read"], prefix="inact")
    assert tenant.admin.api.patch(f"/auth/users/{user.user_id}", json={"is_active": False}).status_code == 200
    api = Api(server, None, next_source_ip())
    r = _refresh(api, user.refresh_token)
    assert_detail(r, 401, "user not found")
    assert "WWW-Authenticate" not in r.headers
    assert tenant.admin.api.patch(f"/auth/users/{user.user_id}", json={"is_active": True}).status_code == 200
    assert_detail(_refresh(api, user.refresh_token), 401, "invalid refresh token")

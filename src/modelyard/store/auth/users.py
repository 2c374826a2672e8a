"""Users, personal access tokens, browser sessions and failed-login counters (rows only).

Hashing and secrets are the caller's (`modelyard.auth`): this layer stores the argon2id hash of a
password and the SHA-256 of a token or session id, and looks them up. Every change takes the `Actor`
making it and writes its audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.entities.auth import Actor, Token, User
from modelyard.exceptions import ModelyardException
from modelyard.store.auth import audit
from modelyard.store.auth.audit import now_ms
from modelyard.store.auth.rows import AuthRows
from modelyard.store.sql.auth_schema import SqlLoginFailures, SqlSession, SqlToken, SqlUser

MAX_USERNAME_CHARS = 256


def _user(row: SqlUser) -> User:
    return User(
        user_id=row.user_id,
        username=row.username,
        is_admin=bool(row.is_admin),
        kind=row.kind,
        creation_time=row.creation_time,
        password_hash=row.password_hash,
    )


def _token(row: SqlToken, username: str, secret: str | None = None) -> Token:
    return Token(
        token_id=row.token_id,
        user_id=row.user_id,
        username=username,
        name=row.name,
        creation_time=row.creation_time,
        expiry_time=row.expiry_time,
        last_used_time=row.last_used_time,
        revoked_time=row.revoked_time,
        secret=secret,
    )


def user_not_found(username: str) -> ModelyardException:
    return ModelyardException.not_found(f"User with username={username} not found")


def validate_username(username: object) -> str:
    if not isinstance(username, str) or not username.strip():
        raise ModelyardException.invalid_parameter(
            "Missing value for required parameter 'username'. See the API docs for more information about request parameters."
        )
    if len(username) > MAX_USERNAME_CHARS or any(ord(c) < 32 or c == ":" for c in username):
        raise ModelyardException.invalid_parameter(
            f"Invalid username: at most {MAX_USERNAME_CHARS} characters, no control characters and no ':'."
        )
    return username



class UserStore(AuthRows):
    # --- users ---------------------------------------------------------------------------------
    def create_user(
        self, username: str, password_hash: str | None, is_admin: bool, kind: str, by: Actor
    ) -> User:
        validate_username(username)
        try:
            with Session(self.engine) as session, session.begin():
                if session.scalar(select(SqlUser.user_id).where(SqlUser.username == username)) is not None:
                    raise ModelyardException.already_exists(f"User (username={username}) already exists.")
                row = SqlUser(
                    username=username,
                    password_hash=password_hash,
                    is_admin=is_admin,
                    kind=kind,
                    creation_time=now_ms(),
                )
                session.add(row)
                session.flush()
                audit.record(session, by, "user.create", username, is_admin=is_admin, kind=kind)
                return _user(row)
        except IntegrityError as exc:  # a concurrent create of the same name
            raise ModelyardException.already_exists(f"User (username={username}) already exists.") from exc

    def get_user(self, username: str) -> User | None:
        with Session(self._read) as session:
            row = session.scalar(select(SqlUser).where(SqlUser.username == username))
            return _user(row) if row is not None else None

    def get_user_by_id(self, user_id: int) -> User | None:
        with Session(self._read) as session:
            row = session.get(SqlUser, user_id)
            return _user(row) if row is not None else None

    def require_user(self, username: str) -> User:
        user = self.get_user(username)
        if user is None:
            raise user_not_found(username)
        return user

    def list_users(self) -> list[User]:
        with Session(self._read) as session:
            return [_user(row) for row in session.scalars(select(SqlUser).order_by(SqlUser.user_id))]

    def count_admins(self) -> int:
        with Session(self._read) as session:
            return int(session.scalar(select(func.count()).where(SqlUser.is_admin.is_(True))) or 0)

    def set_password_hash(self, username: str, password_hash: str, by: Actor) -> None:
        with self._changing() as session:
            done = session.execute(
                update(SqlUser).where(SqlUser.username == username).values(password_hash=password_hash)
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise user_not_found(username)
            # A new password ends the user's browser sessions.
            user_id = session.scalar(select(SqlUser.user_id).where(SqlUser.username == username))
            session.execute(delete(SqlSession).where(SqlSession.user_id == user_id))
            audit.record(session, by, "user.update_password", username)

    def set_admin(self, username: str, is_admin: bool, by: Actor) -> None:
        with self._changing() as session:
            done = session.execute(
                update(SqlUser).where(SqlUser.username == username).values(is_admin=is_admin)
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise user_not_found(username)
            audit.record(session, by, "user.update_admin", username, is_admin=is_admin)

    def delete_user(self, username: str, by: Actor) -> None:
        """Deletes the user's grants, memberships, tokens and sessions with it (foreign keys cascade)."""
        with self._changing() as session:
            done = session.execute(delete(SqlUser).where(SqlUser.username == username))
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise user_not_found(username)
            audit.record(session, by, "user.delete", username)

    # --- personal access tokens ------------------------------------------------------------------

    def insert_token(
        self,
        token_id: str,
        user: User,
        name: str,
        secret_sha256: str,
        expiry_time: int | None,
        secret: str,
        by: Actor,
    ) -> Token:
        with Session(self.engine) as session, session.begin():
            row = SqlToken(
                token_id=token_id,
                user_id=user.user_id,
                name=name,
                secret_sha256=secret_sha256,
                creation_time=now_ms(),
                expiry_time=expiry_time,
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                by,
                "token.create",
                user.username,
                token_id=token_id,
                name=name,
                expiry_time=expiry_time,
            )
            return _token(row, user.username, secret)

    def find_token(self, secret_sha256: str) -> tuple[Token, User] | None:
        with Session(self._read) as session:
            found = session.execute(
                select(SqlToken, SqlUser)
                .join(SqlUser, SqlUser.user_id == SqlToken.user_id)
                .where(SqlToken.secret_sha256 == secret_sha256)
            ).first()
            if found is None:
                return None
            token_row, user_row = found
            return _token(token_row, user_row.username), _user(user_row)

    def get_token(self, token_id: str) -> Token | None:
        with Session(self._read) as session:
            found = session.execute(
                select(SqlToken, SqlUser.username)
                .join(SqlUser, SqlUser.user_id == SqlToken.user_id)
                .where(SqlToken.token_id == token_id)
            ).first()
            return _token(found[0], found[1]) if found is not None else None

    def list_tokens(self, user_id: int | None = None) -> list[Token]:
        """One user's tokens, or everyone's (`user_id` None), newest first."""
        query = (
            select(SqlToken, SqlUser.username)
            .join(SqlUser, SqlUser.user_id == SqlToken.user_id)
            .order_by(SqlToken.creation_time.desc(), SqlToken.token_id)
        )
        if user_id is not None:
            query = query.where(SqlToken.user_id == user_id)
        with Session(self._read) as session:
            return [_token(row, username) for row, username in session.execute(query)]

    def revoke_token(self, token_id: str, by: Actor) -> None:
        with self._changing() as session:
            row = session.get(SqlToken, token_id)
            if row is None:
                raise ModelyardException.not_found(f"Token {token_id} not found")
            if row.revoked_time is None:
                row.revoked_time = now_ms()
            audit.record(session, by, "token.revoke", str(row.user_id), token_id=token_id)

    def touch_token(self, token_id: str, when: int) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(update(SqlToken).where(SqlToken.token_id == token_id).values(last_used_time=when))

    # --- browser sessions ------------------------------------------------------------------------
    def insert_session(self, session_sha256: str, user_id: int, expiry_time: int) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(
                SqlSession(
                    session_sha256=session_sha256,
                    user_id=user_id,
                    creation_time=now_ms(),
                    expiry_time=expiry_time,
                )
            )

    def find_session(self, session_sha256: str) -> tuple[int, User] | None:
        """(expiry time, user) of a session, or None."""
        with Session(self._read) as session:
            found = session.execute(
                select(SqlSession.expiry_time, SqlUser)
                .join(SqlUser, SqlUser.user_id == SqlSession.user_id)
                .where(SqlSession.session_sha256 == session_sha256)
            ).first()
            return (found[0], _user(found[1])) if found is not None else None

    def delete_session(self, session_sha256: str) -> None:
        with self._changing() as session:
            session.execute(delete(SqlSession).where(SqlSession.session_sha256 == session_sha256))
            session.execute(delete(SqlSession).where(SqlSession.expiry_time < now_ms()))

    # --- failed sign-ins -------------------------------------------------------------------------
    def failures(self, keys: list[str]) -> dict[str, tuple[int, int]]:
        """Each key's (window start in ms, failures) as last written."""
        with Session(self._read) as session:
            rows = session.execute(
                select(SqlLoginFailures.key, SqlLoginFailures.window_start, SqlLoginFailures.failures).where(
                    SqlLoginFailures.key.in_(keys)
                )
            )
            return {key: (int(start), int(count)) for key, start, count in rows}

    def add_failure(self, keys: list[str], step: Callable[[tuple[int, int] | None], tuple[int, int]]) -> None:
        """Count a failure for each key: `step` maps its (window start, failures), or None for a first
        one, to the new pair, under the row's lock. Two first failures of one key at once may collide
        on the insert: that one is retried once."""
        for attempt in (1, 2):
            try:
                with Session(self.engine) as session, session.begin():
                    for key in keys:
                        row = session.get(SqlLoginFailures, key, with_for_update=True)
                        start, count = step(None if row is None else (row.window_start, row.failures))
                        if row is None:
                            session.add(SqlLoginFailures(key=key, window_start=start, failures=count))
                            session.flush()
                        else:
                            row.window_start, row.failures = start, count
                return
            except IntegrityError:
                if attempt == 2:
                    raise

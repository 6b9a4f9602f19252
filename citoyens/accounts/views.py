"""Account pages: sign-up, confirmation, login, logout, reset, password change."""

from __future__ import annotations

import hashlib

from flask import Blueprint, flash, redirect, request, session, url_for
from flask_login import current_user, login_required

from citoyens.accounts import operations as ops
from citoyens.accounts import throttle
from citoyens.accounts.forms import (
    ButtonForm,
    ChangeEmailForm,
    ChangePasswordForm,
    EmailOnlyForm,
    LoginForm,
    ResetPasswordForm,
    SignupForm,
)
from citoyens.accounts.passwords import verify_password
from citoyens.accounts.sessions import end_session, start_session
from citoyens.extensions import db, limiter
from citoyens.transactions import write_transaction
from citoyens.web import render, safe_next

bp = Blueprint("accounts", __name__)


def _email_key() -> str:
    email = request.form.get("email", "").strip().lower()
    return "mail-form:" + hashlib.sha256(email.encode()).hexdigest()[:32]


# Mail-sending forms: a few per hour for one address is plenty for a person; a client
# address (a town hall's network, a proxy) gets many more, shared by everyone behind it.
_mail_per_address = limiter.limit("60 per hour", methods=["POST"])
_mail_per_email = limiter.limit("5 per hour", methods=["POST"], key_func=_email_key)


def mail_limit(view):
    return _mail_per_address(_mail_per_email(view))


# The address just confirmed or reset, filled in on the login form that follows.
LOGIN_EMAIL = "login_email"
NOT_THE_CURRENT_ONE = "Le mot de passe actuel est incorrect."
TOO_MANY_ATTEMPTS = (
    "Trop de tentatives avec un mauvais mot de passe : patientez 15 minutes puis réessayez."
)


def current_password_error(password: str) -> str | None:
    """The account forms' current password, throttled like the login: the French error,
    or None when it is right."""
    email = current_user.email
    if throttle.login_blocked(email):
        return TOO_MANY_ATTEMPTS
    if not verify_password(current_user.password_hash, password):
        throttle.record_login_failure(email)
        return NOT_THE_CURRENT_ONE
    return None


def _account_page(form, email_form, error: str | None = None):
    return render(
        "accounts/account.html",
        form=form,
        email_form=email_form,
        status=429 if error == TOO_MANY_ATTEMPTS else 200,
    )


def home_for(user) -> str:
    return url_for("admin.index") if user.is_staff else url_for("core.dashboard")


@bp.route("/connexion", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    if form.validate_on_submit():
        email = form.email.data
        if throttle.login_blocked(email):
            db.session.commit()
            return render(
                "accounts/login.html", form=form, next_url=next_url, blocked=True, status=429
            )
        # argon2 with no write transaction open, then one short write (BEGIN IMMEDIATE on
        # SQLite): a crowd of logins queues for a moment instead of failing.
        attempt = ops.check_credentials(email, form.password.data)
        result = write_transaction(lambda: ops.record_login(attempt))
        if result.user is not None:
            session.pop(LOGIN_EMAIL, None)
            throttle.clear_login_failures(email)
            start_session(result.user, remember=form.remember.data)
            return redirect(next_url or home_for(result.user), 303)
        if not result.unconfirmed:
            throttle.record_login_failure(email)
        return render(
            "accounts/login.html",
            form=form,
            next_url=next_url,
            failed=not result.unconfirmed,
            unconfirmed=result.unconfirmed,
        )
    if not form.is_submitted() and not form.email.data:
        # Just confirmed or reset: the address is filled in, only the password is left to type.
        form.email.data = session.get(LOGIN_EMAIL)
    return render("accounts/login.html", form=form, next_url=next_url)


@bp.post("/deconnexion")
@login_required
def logout():
    write_transaction(current_user.end_all_sessions)
    end_session()
    flash("Vous êtes déconnecté. À bientôt !", "success")
    response = redirect(url_for("accounts.login"), 303)
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@bp.route("/creer-mon-espace", methods=["GET", "POST"])
@mail_limit
def signup():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = SignupForm()
    if form.validate_on_submit():
        ops.register_parent(
            form.email.data, form.password.data, form.first_name.data, form.last_name.data
        )
        db.session.commit()
        return redirect(url_for("accounts.check_inbox"), 303)
    return render("accounts/signup.html", form=form)


@bp.get("/verifiez-vos-mails")
def check_inbox():
    return render("accounts/check_inbox.html")


@bp.route("/confirmer/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    """The link shows a button: a GET never changes state (mail scanners follow links)."""
    form = ButtonForm()
    invalid = False
    if form.validate_on_submit():
        user = ops.confirm_email(token)
        db.session.commit()
        if user is not None:
            session[LOGIN_EMAIL] = user.email
            flash("Votre adresse est confirmée. Vous pouvez vous connecter.", "success")
            return redirect(url_for("accounts.login"), 303)
        invalid = True
    return render("accounts/confirm.html", form=form, token=token, invalid=invalid)


@bp.route("/renvoyer-le-lien", methods=["GET", "POST"])
@mail_limit
def resend_confirmation():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        ops.resend_confirmation(form.email.data)
        db.session.commit()
        return redirect(url_for("accounts.check_inbox"), 303)
    return render("accounts/resend.html", form=form)


@bp.route("/mot-de-passe-oublie", methods=["GET", "POST"])
@mail_limit
def forgot_password():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        ops.request_password_reset(form.email.data)
        db.session.commit()
        return redirect(url_for("accounts.check_inbox", motif="mot-de-passe"), 303)
    return render("accounts/forgot.html", form=form)


@bp.route("/nouveau-mot-de-passe/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    user = ops.user_for_reset_token(token)
    if user is None:
        return render("accounts/reset.html", form=None, invalid=True)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        ops.set_password(user, form.password.data)
        db.session.commit()
        end_session()
        session[LOGIN_EMAIL] = user.email
        flash("Votre mot de passe est enregistré. Connectez-vous avec lui.", "success")
        return redirect(url_for("accounts.login"), 303)
    return render(
        "accounts/reset.html", form=form, invalid=False, activation=user.password_hash is None
    )


@bp.get("/mon-compte")
@login_required
def account():
    return render("accounts/account.html", form=ChangePasswordForm(), email_form=ChangeEmailForm())


@bp.post("/mon-compte/adresse")
@login_required
@mail_limit
def change_email():
    form = ChangeEmailForm()
    error = None
    if form.validate_on_submit():
        error = current_password_error(form.current_password.data)
        if error:
            form.current_password.errors.append(error)
        elif form.email.data.lower() == current_user.email:
            form.email.errors.append("C'est déjà l'adresse de votre espace.")
        else:
            ops.request_email_change(current_user._get_current_object(), form.email.data)
            db.session.commit()
            flash(
                f"Un lien de confirmation a été envoyé à {form.email.data}. "
                "L'adresse changera quand vous l'aurez ouvert.",
                "success",
            )
            return redirect(url_for("accounts.account"), 303)
    return _account_page(ChangePasswordForm(), form, error)


@bp.route("/confirmer-adresse/<token>", methods=["GET", "POST"])
def confirm_email_change(token: str):
    form = ButtonForm()
    invalid = False
    if form.validate_on_submit():
        user = ops.confirm_email_change(token)
        db.session.commit()
        if user is not None:
            end_session()
            session[LOGIN_EMAIL] = user.email
            flash("Votre nouvelle adresse est enregistrée. Connectez-vous avec elle.", "success")
            return redirect(url_for("accounts.login"), 303)
        invalid = True
    return render(
        "accounts/confirm.html", form=form, token=token, invalid=invalid, email_change=True
    )


@bp.post("/mon-compte/mot-de-passe")
@login_required
def change_password():
    form = ChangePasswordForm()
    error = None
    if form.validate_on_submit():
        error = current_password_error(form.current_password.data)
        if error:
            form.current_password.errors.append(error)
        else:
            user = current_user._get_current_object()
            ops.set_password(user, form.password.data)
            db.session.commit()
            # This device stays logged in with the new session id; the others are out.
            start_session(user, remember=False)
            flash(
                "Votre mot de passe est changé. Vos autres appareils sont déconnectés.", "success"
            )
            return redirect(url_for("accounts.account"), 303)
    return _account_page(form, ChangeEmailForm(), error)

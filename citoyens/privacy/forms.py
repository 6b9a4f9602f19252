"""Forms of « Mes données »: asking for the archive (a button), asking to close the account."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField
from wtforms.validators import DataRequired, Length

from citoyens.accounts.passwords import MAX_LENGTH
from citoyens.forms import required
from citoyens.requests.forms import message_field


class ExportForm(FlaskForm):
    """Only a button: the household comes from the session, never from the form."""


class ClosureForm(FlaskForm):
    confirm = BooleanField(
        "J'ai compris que mes accès seront désactivés et que les sommes dues restent à payer.",
        validators=[DataRequired(message="Cochez la case pour confirmer votre demande.")],
    )
    message = message_field("Un mot pour la mairie (facultatif)", optional=True)
    current_password = PasswordField(
        "Mot de passe actuel",
        description="Pour confirmer que c'est bien vous.",
        validators=[required("Le mot de passe actuel"), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )

"""Back-office forms of billing: tariffs (QF bands, prices, walk-in surcharges), the
monthly invoice run, credit notes and refunds; amounts are typed French style ("3,50")."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import StopValidation

from citoyens.billing import tariffs
from citoyens.billing.models import QfBand
from citoyens.forms import required_text, strip
from citoyens.services.forms import whole_number


class EurosField(StringField):
    """An amount typed French style ("3,50"); `cents` holds it once validated, None when
    left empty (allowed unless `required_message` is given)."""

    def __init__(self, label=None, validators=None, *, required_message=None, **kwargs):
        kwargs.setdefault("filters", [strip])
        kwargs.setdefault("render_kw", {"inputmode": "decimal", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)
        self.required_message = required_message
        self.cents: int | None = None

    def pre_validate(self, form):
        self.cents = None
        if not self.data:
            if self.required_message:
                raise StopValidation(self.required_message)
            return
        try:
            self.cents = tariffs.parse_euros(self.data)
        except ValueError as error:
            raise StopValidation(str(error)) from error


class BandForm(FlaskForm):
    position = whole_number(
        "Position",
        "La position",
        1,
        99,
        required_=True,
        description="1 pour la tranche des plus petits quotients.",
    )
    label = StringField(
        "Libellé",
        description="Tel qu'il figure sur la facture, par exemple « Tranche 2 (QF 501 à 800 €) ».",
        filters=[strip],
        validators=required_text("Le libellé", 60),
    )
    qf_max = whole_number(
        "Plafond du quotient familial (en euros)",
        "Le plafond",
        0,
        tariffs.MAX_QF,
        required_=False,
        description="Quotient jusqu'à ce montant inclus. Laissez vide pour la dernière tranche, "
        "qui reçoit aussi les familles dont le quotient est inconnu.",
    )

    def __init__(self, *args, bands=(), band_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._bands, self._band_id = list(bands), band_id

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not valid or self.position.errors or self.qf_max.errors:
            return False
        problem = tariffs.band_problem(
            self._bands, self.position.data, self.qf_max.data, self._band_id
        )
        if problem:
            name, message = problem
            self[name].errors.append(message)
            return False
        return True


def prices_form(bands: list[QfBand], data: dict | None = None) -> FlaskForm:
    """One amount per band of the year; empty means no tariff for that band."""

    class PricesForm(FlaskForm):
        pass

    for band in bands:
        setattr(
            PricesForm,
            f"band_{band.id}",
            EurosField(
                band.label,
                description="Prix d'une unité (journée, repas) en euros, par exemple 3,50. "
                "Vide : pas de tarif, ces jours ne seront pas facturés.",
            ),
        )
    return PricesForm(data=data)


class SurchargeForm(FlaskForm):
    amount = EurosField(
        "Majoration pour une présence sans réservation (en euros)",
        required_message="Le montant est obligatoire : 0 s'il n'y a pas de majoration.",
        description="Ajoutée au prix de l'unité ; aucune majoration si un certificat médical "
        "est fourni.",
    )


class IssueForm(FlaskForm):
    mois = HiddenField()
    confirm_missing = BooleanField(
        "Émettre quand même : les jours sans tarif ne seront pas facturés, et une nouvelle "
        "émission de ce mois ne les rattrapera pas."
    )


class CreditNoteForm(FlaskForm):
    amount = EurosField(
        "Montant de l'avoir (en euros)",
        required_message="Le montant est obligatoire.",
        description="Par exemple 12,30. Le montant total de la facture l'annule entièrement.",
    )
    reason = StringField(
        "Motif",
        description="Figure sur l'avoir, par exemple « Repas du 12/09 compté deux fois ».",
        filters=[strip],
        validators=required_text("Le motif", 200),
    )

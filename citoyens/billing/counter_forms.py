"""Forms of the counter: a payment received (mode, amount, date, title, invoices) and its
reversal. They parse what was typed; `billing.counter` decides what may be recorded and
answers in French, naming the field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired

from citoyens.billing.models import COUNTER_METHODS, PAYMENT_METHODS
from citoyens.billing.staff_forms import EurosField
from citoyens.forms import (
    DATE_FORMATS,
    INVALID_DATE,
    optional_text,
    parse_id,
    required_text,
    strip,
)

METHOD_CHOICES = [
    SelectChoice("", "Choisir…"),
    *(SelectChoice(m, PAYMENT_METHODS[m]) for m in COUNTER_METHODS),
]


class InvoiceIdsField(SelectMultipleField):
    """The invoices ticked: database ids. Which ones may be paid is the rule's business
    (`counter.refusal`), so any id parses here and none is "an invalid choice"."""

    def process_formdata(self, valuelist):
        if not valuelist:
            self.data = []
            return
        ids = [parse_id(value) for value in valuelist[:1000]]
        if None in ids or len(valuelist) > 1000:
            self.data = []
            raise ValueError("Cochez les factures dans la liste.")
        self.data = ids

    def pre_validate(self, form):
        pass


class CounterPaymentForm(FlaskForm):
    method = SelectField(
        "Mode de paiement",
        choices=METHOD_CHOICES,
        validators=[InputRequired("Choisissez le mode de paiement.")],
        validate_choice=False,  # checked by the rule, with a French message
    )
    amount = EurosField(
        "Montant reçu (en euros)",
        required_message="Indiquez le montant reçu, par exemple 45,50.",
        description="Par exemple 45,50. S'il dépasse ce que doivent les factures cochées, "
        "l'excédent reste au crédit de la famille.",
    )
    received_on = DateField(
        "Reçu le",
        format=DATE_FORMATS,
        validators=[InputRequired("Indiquez la date de réception.")],
        invalid_value_message=INVALID_DATE,
        description="Le jour où le paiement a été remis ou reçu, au format jj/mm/aaaa.",
    )
    reference = StringField(
        "Numéro du chèque ou du titre",
        filters=[strip],
        validators=optional_text("Le numéro", 60),
        description="Obligatoire pour un chèque, des CESU ou des chèques-vacances ANCV "
        "(plusieurs titres : « 1234 à 1240 »). Pour un virement : sa référence, si connue.",
    )
    issuer = StringField(
        "Banque ou émetteur",
        filters=[strip],
        validators=optional_text("La banque ou l'émetteur", 80),
        description="La banque du chèque, ou l'émetteur des titres.",
    )
    note = StringField(
        "Note",
        filters=[strip],
        validators=optional_text("La note", 200),
        description="Imprimée sur le reçu remis à la famille.",
    )
    invoices = InvoiceIdsField("Factures réglées", coerce=int)


class ReversalForm(FlaskForm):
    reason = StringField(
        "Motif de l'annulation",
        filters=[strip],
        validators=required_text("Le motif", 200),
        description="Par exemple « Chèque rejeté par la banque » ou « Erreur de saisie ».",
    )

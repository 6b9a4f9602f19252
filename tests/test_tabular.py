"""The one export module: formulas neutralised in CSV and XLSX, money exact, CSV streamed."""

from datetime import date
from decimal import Decimal

from citoyens.tabular import Sheet, cents_to_euros, csv_bytes, read_xlsx, slug, xlsx_bytes

ROWS = [
    ['=HYPERLINK("http://evil")', cents_to_euros(-1230), date(2026, 9, 2), 3],
    ["+33 6 00", cents_to_euros(4500), None, True],
    ["@SUM(A1)", cents_to_euros(1), date(2026, 9, 3), 0],
    ["-2+3", Decimal("0.00"), None, False],
    ["Dupont", cents_to_euros(99999), None, None],
]


def sheet():
    return Sheet("Familles: test/1", ["Nom", "Montant", "Date", "N"], list(ROWS), money_columns=[1])


def test_csv_neutralises_formulas_and_writes_french_numbers():
    text = csv_bytes(sheet()).decode("utf-8")
    assert text.startswith("\ufeffNom;Montant;Date;N\r\n")
    lines = text.lstrip("\ufeff").split("\r\n")
    assert lines[1].startswith('"\'=HYPERLINK(""http://evil"")";-12,30;02/09/2026;3')
    assert lines[2] == "'+33 6 00;45,00;;Oui"
    assert lines[3].startswith("'@SUM(A1);0,01;")
    assert lines[4].startswith("'-2+3;0,00;")
    assert lines[5] == "Dupont;999,99;;"


def test_xlsx_reads_back_with_text_neutralised_and_money_exact():
    book = read_xlsx(xlsx_bytes([sheet()]))
    assert list(book) == ["Familles test 1"]
    rows = book["Familles test 1"]
    assert rows[0] == ["Nom", "Montant", "Date", "N"]
    assert rows[1][0] == '\'=HYPERLINK("http://evil")'
    assert rows[2][0] == "'+33 6 00" and rows[3][0] == "'@SUM(A1)"
    assert rows[1][1] == -12.3 and rows[5][1] == 999.99
    assert rows[1][2].date() == date(2026, 9, 2)
    assert rows[2][3] == "Oui"
    # The sum is exact to the cent.
    assert round(sum(row[1] for row in rows[1:]), 2) == round((-1230 + 4500 + 1 + 99999) / 100, 2)


def test_slug_makes_ascii_file_names():
    assert slug("Périscolaire — APS / matin") == "periscolaire-aps-matin"
    assert slug("../../") == "export"

"""ISO 4217 currencies with their minor-unit exponents, from the `iso4217` package
(the official ISO list). Funds and metals without an exponent are left out."""

from django.db import migrations


def load_currencies(apps, schema_editor):
    from iso4217 import Currency as Iso

    Currency = apps.get_model("ledger", "Currency")
    for iso in Iso:
        if iso.exponent is None:
            continue
        Currency.objects.update_or_create(
            code=iso.code, defaults={"exponent": iso.exponent, "name": iso.currency_name}
        )


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(load_currencies, migrations.RunPython.noop)]

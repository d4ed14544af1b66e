"""ledger_transfer_hold, second version: the destination may be required to belong to
a holder (an organization's transfer never reaches another's account), and the source is
checked before the transfer row is inserted, so that an account of another mode or
currency is a plain refusal instead of an exception from the consistency trigger."""

from importlib import import_module

from django.db import migrations

FIRST_VERSION = import_module("ledger.migrations.0005_transfer_hold_function").FORWARD

FORWARD = r"""
DROP FUNCTION IF EXISTS ledger_transfer_hold(
    text, text, boolean, text, text, text, bigint, text, text, jsonb, text, timestamptz, timestamptz
);

CREATE FUNCTION ledger_transfer_hold(
    p_id text, p_holder text, p_livemode boolean, p_currency text,
    p_source text, p_destination text, p_amount bigint, p_settlement text,
    p_description text, p_metadata jsonb, p_client_reference text,
    p_hold_expires_at timestamptz, p_now timestamptz, p_destination_holder text
) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    -- Money arriving needs no lock: the destination is only read.
    PERFORM 1 FROM ledger_account
      WHERE id = p_destination AND livemode = p_livemode AND currency_id = p_currency
        AND status = 'open'
        AND (p_destination_holder IS NULL OR holder = p_destination_holder);
    IF NOT FOUND THEN
        RETURN 'refused';
    END IF;
    -- The source, before the insert: its trigger would refuse another mode or currency
    -- with an exception, where a plain refusal is wanted.
    PERFORM 1 FROM ledger_account
      WHERE id = p_source AND holder = p_holder AND livemode = p_livemode
        AND currency_id = p_currency;
    IF NOT FOUND THEN
        RETURN 'refused';
    END IF;
    -- Inserted first so that a repeat of a client reference waits on the unique index
    -- for the first to commit, and then moves no money.
    INSERT INTO ledger_transfer (
        id, holder, livemode, currency_id, source_id, destination_id, amount, status,
        settlement, description, metadata, client_reference, hold_expires_at,
        fail_at_settlement, failure_reason, version, created_at, updated_at)
    VALUES (
        p_id, p_holder, p_livemode, p_currency, p_source, p_destination, p_amount, 'pending',
        p_settlement, p_description, p_metadata, p_client_reference, p_hold_expires_at,
        '', '', 1, p_now, p_now)
    ON CONFLICT (holder, livemode, client_reference) WHERE client_reference IS NOT NULL
    DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'exists';
    END IF;
    UPDATE ledger_account SET held = held + p_amount
     WHERE id = p_source AND holder = p_holder AND livemode = p_livemode
       AND currency_id = p_currency AND status = 'open'
       AND held <= 9223372036854775807 - p_amount
       AND (kind = 'system' OR posted - held + overdraft_limit >= p_amount);
    IF NOT FOUND THEN
        DELETE FROM ledger_transfer WHERE id = p_id;
        RETURN 'refused';
    END IF;
    RETURN 'held';
END $$;
"""

BACKWARD = r"""
DROP FUNCTION IF EXISTS ledger_transfer_hold(
    text, text, boolean, text, text, text, bigint, text, text, jsonb, text, timestamptz,
    timestamptz, text
);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)
            cursor.execute(FIRST_VERSION)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_transfer_hold_function")]

    operations = [migrations.RunPython(forward, backward)]

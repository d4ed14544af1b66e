"""The hold of a single transfer as one PostgreSQL function, so that creating a transfer
is one round trip to the database instead of six. ledger.services calls it on
PostgreSQL and runs the same steps in Python elsewhere; when the function refuses, the
services work out the precise reason with the same Python checks."""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_transfer_hold(
    p_id text, p_holder text, p_livemode boolean, p_currency text,
    p_source text, p_destination text, p_amount bigint, p_settlement text,
    p_description text, p_metadata jsonb, p_client_reference text,
    p_hold_expires_at timestamptz, p_now timestamptz
) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    -- Money arriving needs no lock: the destination is only read.
    PERFORM 1 FROM ledger_account
      WHERE id = p_destination AND livemode = p_livemode AND currency_id = p_currency
        AND status = 'open';
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

BACKWARD = "DROP FUNCTION IF EXISTS ledger_transfer_hold;"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_system_account_unique")]

    operations = [migrations.RunPython(forward, backward)]

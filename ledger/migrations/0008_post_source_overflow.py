"""The one-round-trip post (migration 0007) checked that the destination's balance would
not overflow, but not the source's: a system source (test funding) may go negative
without limit, and past -(2^63 - 1) PostgreSQL raised `bigint out of range` inside the
function, which reached the API as a 500. Found by `make fuzz` (funding an account with
9223372036854775806 after others had been funded). Now the function refuses, and the
portable Python path names the error (`balance_overflow`), as it does for the
destination.
"""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION ledger_transfer_post(
    p_id text, p_holder text, p_livemode boolean, p_currency text,
    p_source text, p_destination text, p_amount bigint,
    p_description text, p_metadata jsonb, p_now timestamptz,
    p_debit_entry text, p_credit_entry text
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    src ledger_account%ROWTYPE;
    dst ledger_account%ROWTYPE;
BEGIN
    -- Both sides are written: lock them in id order, the order every transaction uses.
    PERFORM 1 FROM ledger_account WHERE id IN (p_source, p_destination)
      ORDER BY id FOR NO KEY UPDATE;
    SELECT * INTO src FROM ledger_account WHERE id = p_source;
    SELECT * INTO dst FROM ledger_account WHERE id = p_destination;
    IF src.id IS NULL OR dst.id IS NULL
       OR src.holder <> p_holder
       OR src.livemode <> p_livemode OR dst.livemode <> p_livemode
       OR src.currency_id <> p_currency OR dst.currency_id <> p_currency
       OR src.status <> 'open' OR dst.status <> 'open'
       OR (src.kind <> 'system' AND src.posted - src.held + src.overdraft_limit < p_amount)
       OR dst.posted > 9223372036854775807 - p_amount
       {source_check}THEN
        RETURN 'refused';
    END IF;
    INSERT INTO ledger_transfer (
        id, holder, livemode, currency_id, source_id, destination_id, amount, settled_amount,
        status, settlement, description, metadata, client_reference, hold_expires_at,
        fail_at_settlement, failure_reason, version, created_at, updated_at)
    VALUES (
        p_id, p_holder, p_livemode, p_currency, p_source, p_destination, p_amount, p_amount,
        'settled', 'manual', p_description, p_metadata, NULL, NULL, '', '', 2, p_now, p_now);
    UPDATE ledger_account SET posted = posted - p_amount, entry_count = entry_count + 1
     WHERE id = p_source;
    UPDATE ledger_account SET posted = posted + p_amount, entry_count = entry_count + 1
     WHERE id = p_destination;
    INSERT INTO ledger_entry (id, account_id, transfer_id, amount, balance_after, seq, created_at)
    VALUES
        (p_debit_entry, p_source, p_id, -p_amount, src.posted - p_amount, src.entry_count + 1, p_now),
        (p_credit_entry, p_destination, p_id, p_amount, dst.posted + p_amount, dst.entry_count + 1, p_now);
    RETURN 'posted';
END $$;
"""

# src.posted - p_amount < -(2^63 - 1), written so that nothing in it can overflow.
FORWARD = FUNCTION.format(source_check="OR src.posted < p_amount - 9223372036854775807\n       ")
BACKWARD = FUNCTION.format(source_check="")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0007_post_and_batch_functions")]

    operations = [migrations.RunPython(forward, backward)]

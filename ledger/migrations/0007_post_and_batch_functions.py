"""Two more operations in one round trip on PostgreSQL, for the same reason as the single
hold (migration 0005): a single-phase post, and a batch of holds done set-based.

Each function only answers whether it did the work; when it refuses, ledger.services runs
the portable Python path, which either finds the precise error or, if whatever refused has
changed since, does the work itself.

The transfer consistency check becomes a statement-level trigger on insert, so a batch
of a thousand transfers is checked with one join instead of a thousand lookups.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_transfer_post(
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
       OR dst.posted > 9223372036854775807 - p_amount THEN
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

CREATE FUNCTION ledger_batch_items(p_items jsonb) RETURNS TABLE (
    id text, source text, destination text, amount bigint, currency text,
    settlement text, description text, metadata jsonb
) LANGUAGE sql IMMUTABLE AS $$
    SELECT * FROM jsonb_to_recordset(p_items) AS x(
        id text, source text, destination text, amount bigint, currency text,
        settlement text, description text, metadata jsonb)
$$;

CREATE FUNCTION ledger_transfer_hold_batch(
    p_holder text, p_livemode boolean, p_now timestamptz, p_destination_holder text,
    p_items jsonb
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    refused integer;
BEGIN
    -- Sources are locked (in id order) because their funds are checked and held;
    -- destinations are only read.
    PERFORM 1 FROM ledger_account
      WHERE id IN (SELECT source FROM ledger_batch_items(p_items)) ORDER BY id
      FOR NO KEY UPDATE;

    SELECT count(*) INTO refused
      FROM ledger_batch_items(p_items) i
      LEFT JOIN ledger_account s
        ON s.id = i.source AND s.holder = p_holder AND s.livemode = p_livemode
       AND s.currency_id = i.currency AND s.status = 'open'
      LEFT JOIN ledger_account d
        ON d.id = i.destination AND d.livemode = p_livemode AND d.currency_id = i.currency
       AND d.status = 'open' AND (p_destination_holder IS NULL OR d.holder = p_destination_holder)
     WHERE s.id IS NULL OR d.id IS NULL;
    IF refused > 0 THEN
        RETURN 'refused';
    END IF;

    SELECT count(*) INTO refused
      FROM (SELECT source, sum(amount) AS total FROM ledger_batch_items(p_items) GROUP BY source) t
      JOIN ledger_account a ON a.id = t.source
     WHERE a.held > 9223372036854775807 - t.total
        OR (a.kind <> 'system' AND a.posted - a.held + a.overdraft_limit < t.total);
    IF refused > 0 THEN
        RETURN 'refused';
    END IF;

    INSERT INTO ledger_transfer (
        id, holder, livemode, currency_id, source_id, destination_id, amount, status,
        settlement, description, metadata, client_reference, hold_expires_at,
        fail_at_settlement, failure_reason, version, created_at, updated_at)
    SELECT id, p_holder, p_livemode, currency, source, destination, amount, 'pending',
           settlement, description, metadata, NULL, NULL, '', '', 1, p_now, p_now
      FROM ledger_batch_items(p_items);
    UPDATE ledger_account a SET held = a.held + t.total
      FROM (SELECT source, sum(amount) AS total FROM ledger_batch_items(p_items) GROUP BY source) t
     WHERE a.id = t.source;
    RETURN 'held';
END $$;

DROP TRIGGER ledger_transfer_consistent ON ledger_transfer;

CREATE FUNCTION ledger_transfers_consistent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM inserted t
          JOIN ledger_account a ON a.id IN (t.source_id, t.destination_id)
         WHERE a.currency_id <> t.currency_id OR a.livemode <> t.livemode
    ) THEN
        RAISE EXCEPTION 'a transfer joins accounts of another currency or mode'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_transfer_consistent_insert
    AFTER INSERT ON ledger_transfer
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_consistent();

CREATE TRIGGER ledger_transfer_consistent_update
    BEFORE UPDATE OF source_id, destination_id, currency_id, livemode ON ledger_transfer
    FOR EACH ROW EXECUTE FUNCTION ledger_transfer_consistent();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS ledger_transfer_consistent_update ON ledger_transfer;
DROP TRIGGER IF EXISTS ledger_transfer_consistent_insert ON ledger_transfer;
DROP FUNCTION IF EXISTS ledger_transfers_consistent();
CREATE TRIGGER ledger_transfer_consistent
    BEFORE INSERT OR UPDATE OF source_id, destination_id, currency_id, livemode
    ON ledger_transfer
    FOR EACH ROW EXECUTE FUNCTION ledger_transfer_consistent();
DROP FUNCTION IF EXISTS ledger_transfer_hold_batch(text, boolean, timestamptz, text, jsonb);
DROP FUNCTION IF EXISTS ledger_batch_items(jsonb);
DROP FUNCTION IF EXISTS ledger_transfer_post(
    text, text, boolean, text, text, text, bigint, text, jsonb, timestamptz, text, text
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


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_transfer_hold_destination_holder")]

    operations = [migrations.RunPython(forward, backward)]

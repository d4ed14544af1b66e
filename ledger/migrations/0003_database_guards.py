"""On PostgreSQL the database itself guards the books, whatever code or person writes
to it: entries are immutable, a transfer's entries sum to zero in one currency (checked
at commit), and a transfer joins two accounts of its own currency and mode.
The CHECK constraints on the models (non-negative holds, balances within their limit)
complete the set. SQLite relies on ledger.services alone."""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_entry_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable: % refused on %', TG_OP, OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER ledger_entry_immutable
    BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_immutable();

CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
    foreign_currency integer;
BEGIN
    SELECT COALESCE(SUM(e.amount), 0), COUNT(*) FILTER (WHERE a.currency_id <> t.currency_id)
      INTO total, foreign_currency
      FROM ledger_entry e
      JOIN ledger_account a ON a.id = e.account_id
      JOIN ledger_transfer t ON t.id = e.transfer_id
     WHERE e.transfer_id = NEW.transfer_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'entries of transfer % sum to %, not zero', NEW.transfer_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    IF foreign_currency > 0 THEN
        RAISE EXCEPTION 'entries of transfer % are not all in its currency', NEW.transfer_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

-- Deferred to commit: the entries of a posting are inserted one statement at a time.
CREATE CONSTRAINT TRIGGER ledger_entry_balanced
    AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();

CREATE FUNCTION ledger_transfer_consistent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM ledger_account a
         WHERE a.id IN (NEW.source_id, NEW.destination_id)
           AND (a.currency_id <> NEW.currency_id OR a.livemode <> NEW.livemode)
    ) THEN
        RAISE EXCEPTION 'transfer % joins accounts of another currency or mode', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ledger_transfer_consistent
    BEFORE INSERT OR UPDATE OF source_id, destination_id, currency_id, livemode
    ON ledger_transfer
    FOR EACH ROW EXECUTE FUNCTION ledger_transfer_consistent();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS ledger_transfer_consistent ON ledger_transfer;
DROP FUNCTION IF EXISTS ledger_transfer_consistent();
DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_entry_balanced();
DROP TRIGGER IF EXISTS ledger_entry_immutable ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_entry_immutable();
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
    dependencies = [("ledger", "0002_currencies")]

    operations = [migrations.RunPython(forward, backward)]

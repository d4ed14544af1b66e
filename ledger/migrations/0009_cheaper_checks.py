"""The same guarantees for less work per transfer (benchmarks: batch_speedup, vs_hordak).

- ledger_entry_balanced, still a deferred check of each entry at commit, no longer joins
  all of the transfer's entries with their accounts and the transfer: each entry checks
  that the transfer's entries sum to zero (one scan of the transfer_id index) and that
  its own account is in the transfer's currency (two primary-key lookups). Every entry
  runs the check for itself, so every entry of the transfer is still covered.
- ledger_transfer_post locks and reads both accounts in one statement and writes both in
  one UPDATE.
- The second, LIKE-only indexes Django adds to the id columns of transfers and entries
  are dropped (PATTERN_INDEXES below).

Measured on a copy of the benchmark database (quick mode, 2 cores): 16 threads of
transfer_post 2,036 -> 2,214 transfers/s (medians of 4 alternating 4 s runs), a batch
of 100 holds 9.6-10.9 -> 8.7 ms.
"""

from importlib import import_module

from django.db import migrations

GUARDS = import_module("ledger.migrations.0003_database_guards").FORWARD
POST = import_module("ledger.migrations.0008_post_source_overflow").FORWARD


def _function(source: str, name: str) -> str:
    """The CREATE FUNCTION of `name` in an earlier migration's SQL, to restore it."""
    start = source.index(f"CREATE FUNCTION {name}(")
    body = source.index("$$", start) + 2
    end = source.index("$$;", body) + 3
    return source[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
BEGIN
    SELECT COALESCE(SUM(amount), 0) INTO total
      FROM ledger_entry WHERE transfer_id = NEW.transfer_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'entries of transfer % sum to %, not zero', NEW.transfer_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    -- Only this entry's account: each entry of the transfer runs this check for itself.
    PERFORM 1 FROM ledger_account a, ledger_transfer t
      WHERE a.id = NEW.account_id AND t.id = NEW.transfer_id AND a.currency_id = t.currency_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'entries of transfer % are not all in its currency', NEW.transfer_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ledger_transfer_post(
    p_id text, p_holder text, p_livemode boolean, p_currency text,
    p_source text, p_destination text, p_amount bigint,
    p_description text, p_metadata jsonb, p_now timestamptz,
    p_debit_entry text, p_credit_entry text
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    account ledger_account%ROWTYPE;
    src ledger_account%ROWTYPE;
    dst ledger_account%ROWTYPE;
BEGIN
    -- Both sides are written: lock them in id order, the order every transaction uses.
    FOR account IN SELECT * FROM ledger_account WHERE id IN (p_source, p_destination)
                    ORDER BY id FOR NO KEY UPDATE LOOP
        IF account.id = p_source THEN
            src := account;
        ELSE
            dst := account;
        END IF;
    END LOOP;
    IF src.id IS NULL OR dst.id IS NULL
       OR src.holder <> p_holder
       OR src.livemode <> p_livemode OR dst.livemode <> p_livemode
       OR src.currency_id <> p_currency OR dst.currency_id <> p_currency
       OR src.status <> 'open' OR dst.status <> 'open'
       OR (src.kind <> 'system' AND src.posted - src.held + src.overdraft_limit < p_amount)
       OR dst.posted > 9223372036854775807 - p_amount
       -- src.posted - p_amount < -(2^63 - 1), written so that nothing in it can overflow.
       OR src.posted < p_amount - 9223372036854775807 THEN
        RETURN 'refused';
    END IF;
    INSERT INTO ledger_transfer (
        id, holder, livemode, currency_id, source_id, destination_id, amount, settled_amount,
        status, settlement, description, metadata, client_reference, hold_expires_at,
        fail_at_settlement, failure_reason, version, created_at, updated_at)
    VALUES (
        p_id, p_holder, p_livemode, p_currency, p_source, p_destination, p_amount, p_amount,
        'settled', 'manual', p_description, p_metadata, NULL, NULL, '', '', 2, p_now, p_now);
    UPDATE ledger_account
       SET posted = posted + CASE WHEN id = p_source THEN -p_amount ELSE p_amount END,
           entry_count = entry_count + 1
     WHERE id IN (p_source, p_destination);
    INSERT INTO ledger_entry (id, account_id, transfer_id, amount, balance_after, seq, created_at)
    VALUES
        (p_debit_entry, p_source, p_id, -p_amount, src.posted - p_amount, src.entry_count + 1, p_now),
        (p_credit_entry, p_destination, p_id, p_amount, dst.posted + p_amount, dst.entry_count + 1, p_now);
    RETURN 'posted';
END $$;
"""

# Django gives every indexed varchar column on PostgreSQL a second index,
# varchar_pattern_ops, for LIKE 'prefix%'. Nothing looks transfers or entries up by a
# prefix of an id (the admin searches ids exactly; equality and order use the primary key
# and foreign-key indexes, which stay), so these cost writes only: seven index entries of
# the 23 a posted transfer adds (5 of the 12 a hold adds). Django drops them itself (IF EXISTS) if a later
# migration alters one of these columns, and creates them again if that field keeps its
# index.
PATTERN_INDEXES = {
    "ledger_transfer_id_aba10f8e_like": "ledger_transfer (id varchar_pattern_ops)",
    "ledger_transfer_currency_id_d2e7e8ef_like": "ledger_transfer (currency_id varchar_pattern_ops)",
    "ledger_transfer_source_id_c0c32e3f_like": "ledger_transfer (source_id varchar_pattern_ops)",
    "ledger_transfer_destination_id_83d97a15_like": (
        "ledger_transfer (destination_id varchar_pattern_ops)"
    ),
    "ledger_transfer_reversal_of_id_969a3252_like": (
        "ledger_transfer (reversal_of_id varchar_pattern_ops)"
    ),
    "ledger_entry_id_a00ffd04_like": "ledger_entry (id varchar_pattern_ops)",
    "ledger_entry_transfer_id_c95afec7_like": "ledger_entry (transfer_id varchar_pattern_ops)",
}

FORWARD += "".join(f"DROP INDEX IF EXISTS {name};\n" for name in PATTERN_INDEXES)

BACKWARD = "\n".join(
    [
        _function(GUARDS, "ledger_entry_balanced"),
        POST,
        *(f"CREATE INDEX {name} ON {table};" for name, table in PATTERN_INDEXES.items()),
    ]
)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0008_post_source_overflow")]

    operations = [migrations.RunPython(forward, backward)]

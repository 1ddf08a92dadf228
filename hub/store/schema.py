"""The store's schema, as numbered migrations applied in order at every start.

The rule "one ACTIVE agreement per number" is a partial unique index, so it holds however many
writers there are: the hub never relies on check-then-insert for it.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE inbox (
        sender TEXT NOT NULL, message_id TEXT NOT NULL, type TEXT NOT NULL,
        received_at TEXT NOT NULL, PRIMARY KEY (sender, message_id));
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, target TEXT NOT NULL,
        routing_key TEXT NOT NULL, type TEXT NOT NULL, correlation_id TEXT, body BLOB NOT NULL,
        headers TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT, attempts INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
    CREATE INDEX outbox_answers ON outbox (correlation_id);
    CREATE INDEX outbox_message ON outbox (message_id);
    CREATE TABLE flows (
        flow_key TEXT PRIMARY KEY, bank TEXT NOT NULL, request_id TEXT NOT NULL, phone TEXT NOT NULL,
        verify_id TEXT UNIQUE, state TEXT NOT NULL, deadline TEXT, data TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX flows_due ON flows (deadline) WHERE state = 'VERIFYING';
    CREATE INDEX flows_phone ON flows (phone);
    CREATE TABLE agreements (
        agreement_id TEXT PRIMARY KEY, version INTEGER NOT NULL, status TEXT NOT NULL,
        phone TEXT NOT NULL, province TEXT NOT NULL, bank TEXT NOT NULL, bank_agreement_no TEXT NOT NULL,
        account_fp TEXT NOT NULL, account_last4 TEXT NOT NULL, account_enc TEXT NOT NULL,
        account_type TEXT NOT NULL, user_type TEXT NOT NULL, recharge_threshold INTEGER,
        recharge_amount INTEGER, auto_pay INTEGER NOT NULL, channel TEXT NOT NULL,
        signed_at TEXT NOT NULL, updated_at TEXT NOT NULL, flow_key TEXT,
        crm_synced TEXT, boss_synced TEXT);
    CREATE UNIQUE INDEX one_active_agreement_per_phone ON agreements (phone) WHERE status = 'ACTIVE';
    CREATE UNIQUE INDEX one_agreement_per_bank_number ON agreements (bank, bank_agreement_no);
    CREATE INDEX agreements_phone ON agreements (phone);
    CREATE TABLE cases (
        case_id TEXT PRIMARY KEY, phone TEXT NOT NULL, new_agreement_id TEXT NOT NULL,
        existing_agreement_id TEXT NOT NULL, flow_key TEXT NOT NULL, message_id TEXT NOT NULL,
        sender TEXT NOT NULL, source TEXT NOT NULL, state TEXT NOT NULL, opened_at TEXT NOT NULL,
        original_enc TEXT NOT NULL, resolution TEXT, resolved_by TEXT, resolved_at TEXT, reason TEXT);
    CREATE TABLE dead_messages (
        dead_id TEXT PRIMARY KEY, sender TEXT, message_id TEXT, routing_key TEXT NOT NULL,
        type TEXT, reason TEXT NOT NULL, error TEXT NOT NULL, properties TEXT NOT NULL,
        original_enc TEXT NOT NULL, received_at TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'OPEN');
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, agreement_id TEXT, flow_key TEXT,
        event TEXT NOT NULL, party TEXT, message_id TEXT, detail TEXT NOT NULL DEFAULT '{}');
    CREATE INDEX events_agreement ON events (agreement_id);
    CREATE INDEX events_flow ON events (flow_key);
    """,
    # 2: the hub's own secrets and settings that must outlive a key rotation (values encrypted).
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 3: the agreement lifecycle: what the CRM allowed, and every change with before and after.
    """
    ALTER TABLE agreements ADD COLUMN auto_pay_allowed INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE agreement_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, agreement_id TEXT NOT NULL, version INTEGER NOT NULL,
        at TEXT NOT NULL, source TEXT NOT NULL, message_id TEXT, change TEXT NOT NULL,
        before TEXT, after TEXT NOT NULL);
    CREATE INDEX agreement_history_agreement ON agreement_history (agreement_id, version);
    CREATE INDEX agreement_history_at ON agreement_history (at);
    """,
    # 4: flow-1 signing sessions (operator channel); never a card or ID number in them.
    """
    CREATE TABLE signing_sessions (
        session_id TEXT PRIMARY KEY, hall TEXT NOT NULL, bank TEXT NOT NULL, phone TEXT NOT NULL,
        province TEXT NOT NULL, state TEXT NOT NULL, expires_at TEXT NOT NULL, data TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX signing_sessions_due ON signing_sessions (expires_at)
        WHERE state IN ('CREATED', 'ENTERED', 'AT_BANK');
    CREATE INDEX signing_sessions_phone ON signing_sessions (phone);
    """,
    # 5: reconciliation (flow 3): each party's file, keyed by (party, file_name), with its outcome,
    # its progress (so a restarted hub goes on where it stopped) and records held past a cut-off.
    """
    CREATE TABLE recon_files (
        party TEXT NOT NULL, file_name TEXT NOT NULL, business_date TEXT NOT NULL, scope TEXT NOT NULL,
        record_count INTEGER NOT NULL, sha256 TEXT NOT NULL, message_id TEXT NOT NULL, state TEXT NOT NULL,
        received_at TEXT NOT NULL, finished_at TEXT, progress INTEGER NOT NULL DEFAULT 0, counts TEXT,
        reason TEXT, errors_file TEXT, errors_count INTEGER, applied INTEGER, failed INTEGER,
        PRIMARY KEY (party, file_name));
    CREATE INDEX recon_files_state ON recon_files (state, received_at);
    CREATE UNIQUE INDEX recon_files_errors ON recon_files (party, errors_file) WHERE errors_file IS NOT NULL;
    CREATE TABLE recon_held (
        party TEXT NOT NULL, record_key TEXT NOT NULL, side TEXT NOT NULL, line TEXT,
        business_date TEXT NOT NULL, PRIMARY KEY (party, record_key));
    CREATE INDEX agreements_province ON agreements (province);
    """,
    # 6: operations: operators and their sessions, case claims, four-eyes approvals, and the audit
    # log: append-only (triggers refuse UPDATE and DELETE; PostgreSQL gets the same from
    # postgres.ddl) and chained by hash, so a row changed behind the hub's back shows.
    """
    CREATE TABLE operators (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, created_at TEXT NOT NULL,
        created_by TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE operator_sessions (
        token_hash TEXT PRIMARY KEY, operator TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL);
    CREATE INDEX operator_sessions_expiry ON operator_sessions (expires_at);
    CREATE TABLE case_claims (case_id TEXT PRIMARY KEY, operator TEXT NOT NULL, claimed_at TEXT NOT NULL);
    CREATE TABLE approvals (
        approval_id TEXT PRIMARY KEY, kind TEXT NOT NULL, target_id TEXT NOT NULL, proposed_by TEXT NOT NULL,
        reason TEXT NOT NULL, payload_enc TEXT NOT NULL, preview TEXT NOT NULL, state TEXT NOT NULL,
        proposed_at TEXT NOT NULL, decided_by TEXT, decided_at TEXT);
    CREATE UNIQUE INDEX approvals_one_pending ON approvals (kind, target_id) WHERE state = 'PENDING';
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT,
        reason TEXT, before TEXT, after TEXT, prev_hash TEXT NOT NULL UNIQUE, hash TEXT NOT NULL);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    """,
)

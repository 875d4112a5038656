-- A database written by accessbot 0.1.0 (sqlite-utils migrations m001-m003), dumped with sqlite3's iterdump.
BEGIN TRANSACTION;
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
INSERT INTO "_sqlite_migrations" VALUES(1,'accessbot','m001_initial','2026-12-04 21:15:47.913211+00:00');
INSERT INTO "_sqlite_migrations" VALUES(2,'accessbot','m002_audit_action_index','2026-12-04 21:15:47.913735+00:00');
INSERT INTO "_sqlite_migrations" VALUES(3,'accessbot','m003_grant_extensions','2026-12-04 21:15:47.914380+00:00');
CREATE TABLE "audit_events" (
   "id" INTEGER PRIMARY KEY,
   "ts" INTEGER NOT NULL,
   "actor" TEXT NOT NULL,
   "action" TEXT NOT NULL,
   "target" TEXT NOT NULL,
   "outcome" TEXT NOT NULL,
   "reason" TEXT NOT NULL,
   "request_id" TEXT NOT NULL,
   "details" TEXT NOT NULL,
   "prev_hash" TEXT NOT NULL,
   "hash" TEXT NOT NULL
);
INSERT INTO "audit_events" VALUES(1,1800000000,'U0ALICE001','grant.activated','c-1:p-1','ok','','g-1','{}','0000000000000000000000000000000000000000000000000000000000000000','980d68709f15b929a758ef1d5b4e0ff1662d3f44eef64f70a37f5edf59a8c19d');
INSERT INTO "audit_events" VALUES(2,1800000000,'U0ALICE001','link.created','sub-alice','ok','','','{}','980d68709f15b929a758ef1d5b4e0ff1662d3f44eef64f70a37f5edf59a8c19d','112c538fbe9072cd1b5b22f5e4c298a8aeb92a3c3e664835a839d36082f70ec0');
CREATE TABLE "audit_head" (
   "id" INTEGER PRIMARY KEY,
   "last_id" INTEGER,
   "last_hash" TEXT
);
INSERT INTO "audit_head" VALUES(1,2,'112c538fbe9072cd1b5b22f5e4c298a8aeb92a3c3e664835a839d36082f70ec0');
CREATE TABLE "counters" (
   "name" TEXT PRIMARY KEY,
   "value" INTEGER NOT NULL
);
INSERT INTO "counters" VALUES('grant',1);
CREATE TABLE "extension_approvals" (
   "grant_id" TEXT,
   "number" INTEGER,
   "approver" TEXT,
   "at" INTEGER NOT NULL,
   PRIMARY KEY ("grant_id", "number", "approver")
);
CREATE TABLE "grant_approvals" (
   "grant_id" TEXT,
   "approver" TEXT,
   "decision" TEXT NOT NULL,
   "at" INTEGER NOT NULL,
   "comment" TEXT DEFAULT '',
   PRIMARY KEY ("grant_id", "approver")
);
CREATE TABLE "grant_extensions" (
   "grant_id" TEXT,
   "number" INTEGER,
   "extra_s" INTEGER NOT NULL,
   "requested_at" INTEGER NOT NULL,
   "requested_by" TEXT NOT NULL,
   "state" TEXT NOT NULL,
   "decided_at" INTEGER,
   "decided_by" TEXT DEFAULT '',
   PRIMARY KEY ("grant_id", "number")
);
CREATE TABLE "grant_history" (
   "id" INTEGER PRIMARY KEY,
   "grant_id" TEXT NOT NULL,
   "from_state" TEXT,
   "to_state" TEXT NOT NULL,
   "at" INTEGER NOT NULL,
   "actor" TEXT NOT NULL,
   "reason" TEXT DEFAULT ''
);
CREATE TABLE "grants" (
   "seq" INTEGER PRIMARY KEY,
   "id" TEXT NOT NULL,
   "slack_user" TEXT NOT NULL,
   "subject" TEXT NOT NULL,
   "cluster_id" TEXT NOT NULL,
   "project_id" TEXT,
   "role_id" TEXT NOT NULL,
   "duration_s" INTEGER NOT NULL,
   "rule" TEXT NOT NULL,
   "state" TEXT NOT NULL,
   "requested_at" INTEGER NOT NULL,
   "reason" TEXT DEFAULT '',
   "ticket" TEXT DEFAULT '',
   "break_glass" INTEGER DEFAULT 0,
   "self_service" INTEGER DEFAULT 0,
   "approvals_required" INTEGER DEFAULT 0,
   "activated_at" INTEGER,
   "expires_at" INTEGER,
   "ended_at" INTEGER,
   "binding_id" TEXT,
   "binding_name" TEXT,
   "user_principal_id" TEXT,
   "extensions" INTEGER DEFAULT 0,
   "failure" TEXT DEFAULT '',
   "via_groups" TEXT DEFAULT '[]',
   "request_expires_at" INTEGER,
   "drifted" INTEGER DEFAULT 0,
   "attempts" INTEGER DEFAULT 0,
   "next_attempt_at" INTEGER DEFAULT 0,
   "warned_at" INTEGER,
   "overdue_alerted" INTEGER DEFAULT 0,
   "updated_at" INTEGER
);
INSERT INTO "grants" VALUES(1,'g-1','U0ALICE001','sub-alice','c-1','c-1:p-1','project-member',3600,'dev','active',1800000000,'','',0,0,0,1800000000,1800003600,NULL,NULL,NULL,NULL,0,'','[]',NULL,0,0,0,NULL,0,1800000000);
CREATE TABLE "job_leases" (
   "name" TEXT PRIMARY KEY,
   "owner" TEXT NOT NULL,
   "expires_at" INTEGER NOT NULL,
   "renewed_at" INTEGER
);
INSERT INTO "job_leases" VALUES('jobs','host:1:abc',1800000060,1800000000);
CREATE TABLE "job_state" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT,
   "updated_at" INTEGER
);
CREATE TABLE "links" (
   "slack_user" TEXT PRIMARY KEY,
   "team_id" TEXT NOT NULL,
   "issuer" TEXT NOT NULL,
   "subject" TEXT NOT NULL,
   "email" TEXT DEFAULT '',
   "name" TEXT DEFAULT '',
   "groups" TEXT NOT NULL DEFAULT '[]',
   "refresh_token" TEXT,
   "token_expires_at" INTEGER,
   "linked_at" INTEGER NOT NULL,
   "refreshed_at" INTEGER NOT NULL,
   "status" TEXT NOT NULL DEFAULT 'active',
   "revoked_at" INTEGER,
   "revoked_reason" TEXT,
   "refresh_failures" INTEGER DEFAULT 0,
   "next_refresh_at" INTEGER
);
INSERT INTO "links" VALUES('U0ALICE001','T0TEST0001','https://idp.example','sub-alice','u0alice001@example.com','U0ALICE001','["engineering"]',NULL,NULL,1800000000,1800000000,'active',NULL,NULL,0,NULL);
CREATE TABLE "login_attempts" (
   "id" TEXT PRIMARY KEY,
   "team_id" TEXT NOT NULL,
   "slack_user" TEXT NOT NULL,
   "state" TEXT NOT NULL,
   "nonce" TEXT NOT NULL,
   "code_verifier" TEXT NOT NULL,
   "cookie_hash" TEXT,
   "created_at" INTEGER NOT NULL,
   "expires_at" INTEGER NOT NULL,
   "started_at" INTEGER,
   "used_at" INTEGER
);
CREATE TABLE "outbox" (
   "id" INTEGER PRIMARY KEY,
   "key" TEXT NOT NULL,
   "kind" TEXT NOT NULL,
   "channel" TEXT NOT NULL,
   "payload" TEXT NOT NULL,
   "attempts" INTEGER DEFAULT 0,
   "next_attempt_at" INTEGER DEFAULT 0,
   "created_at" INTEGER NOT NULL,
   "sent_at" INTEGER,
   "last_error" TEXT DEFAULT '',
   "result_ts" TEXT
);
INSERT INTO "outbox" VALUES(1,'k1','dm','U0ALICE001','{"text": "hi"}',0,1800000000,1800000000,NULL,'',NULL);
CREATE TABLE "slack_messages" (
   "key" TEXT PRIMARY KEY,
   "channel" TEXT NOT NULL,
   "ts" TEXT NOT NULL
);
CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");
CREATE UNIQUE INDEX uq_links_subject ON links(issuer, subject) WHERE status = 'active';
CREATE UNIQUE INDEX "idx_login_attempts_state"
    ON "login_attempts" ("state");
CREATE UNIQUE INDEX "idx_grants_id"
    ON "grants" ("id");
CREATE INDEX "idx_grants_state_expires_at"
    ON "grants" ("state", "expires_at");
CREATE INDEX "idx_grants_slack_user_state"
    ON "grants" ("slack_user", "state");
CREATE INDEX "idx_grant_history_grant_id"
    ON "grant_history" ("grant_id");
CREATE INDEX "idx_audit_events_ts"
    ON "audit_events" ("ts");
CREATE UNIQUE INDEX "idx_outbox_key"
    ON "outbox" ("key");
CREATE INDEX "idx_outbox_sent_at_next_attempt_at"
    ON "outbox" ("sent_at", "next_attempt_at");
CREATE INDEX idx_audit_events_action_ts on audit_events(action, ts);
COMMIT;

-- Reliability: re-sending the message of a queued try whose message was lost, and encrypted secrets.

-- When the current try's message last went to the broker (queueing, or re-sending a lost one), and how
-- often it was re-sent. A try queued longer than the scheduler's threshold, with an empty broker queue
-- and no outbox row, lost its message and gets a new one.
ALTER TABLE task_instances
  ADD COLUMN enqueued_at timestamptz,
  ADD COLUMN requeues integer NOT NULL DEFAULT 0;
UPDATE task_instances SET enqueued_at = queued_at WHERE state = 'queued';

-- Secret values are stored encrypted (AES-256-GCM, see src/engine/secrets.ts); false for rows written
-- before encryption existed, which are still read as plain text and encrypted on their next set.
ALTER TABLE variables ADD COLUMN encrypted boolean NOT NULL DEFAULT false;

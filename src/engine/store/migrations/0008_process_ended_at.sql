-- When a try's process really ended, when that was after its try was ended for it (its worker declared
-- lost, its run cancelled): the worker's late result, fenced out by its claim token, records it. Between
-- ended_at and it the try ran unseen, possibly beside the task's next try.
ALTER TABLE task_tries ADD COLUMN process_ended_at timestamptz;

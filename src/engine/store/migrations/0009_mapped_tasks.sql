-- Mapped tasks: one task instance per item, `<task>[<index>]`, made when the task's own row has stored the
-- list as its output. Each item's row keeps its item, which its tries get as data ({{ item }}, ctx.item).
ALTER TABLE task_instances ADD COLUMN map_item jsonb;

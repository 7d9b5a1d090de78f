-- Placeholder on branch h/web only: 0013 belongs to another branch (h/report). Migrations
-- may have no gaps, so this keeps 0014 loadable here. Drop it at merge.
SELECT 1;

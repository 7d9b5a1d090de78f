-- jiancha schema, version 7: reserved for a migration written on another branch
-- (issue 17). This placeholder only keeps the versions gapless on branch
-- h/cursor; when the branches are merged, the real 0007 replaces this file.
SELECT 1;

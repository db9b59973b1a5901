-- Placeholder: number 0005 is reserved for another branch (the migrator needs numbers without gaps). When that
-- branch's 0005 is merged, delete this file. Never ship a build with this file to a database that will later
-- need the real 0005: the migrator would consider version 5 applied.
SELECT 1;

-- Tables that take a row (or several) per posted time entry draw their ids 1,000 at a time per
-- connection: one sequence access per thousand rows instead of one per row. Ids stay unique,
-- not gap-free or ordered across connections (nothing orders these tables by id across
-- writers; the inbox keeps an uncached sequence because "newest payload wins" follows its id
-- order). Run by migration sync 0001 (sync tables) and pipeline 0001 (pipeline_delivery).
ALTER TABLE sync_timeentry ALTER COLUMN id SET CACHE 1000;
ALTER TABLE sync_historicaltimeentry ALTER COLUMN history_id SET CACHE 1000;
ALTER TABLE sync_externalref ALTER COLUMN id SET CACHE 1000;
ALTER TABLE sync_historicalexternalref ALTER COLUMN history_id SET CACHE 1000;
